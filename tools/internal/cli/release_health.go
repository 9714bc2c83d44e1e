package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

func (a *app) releaseHealthCmd() *cobra.Command {
	var rf releaseFlags
	cmd := &cobra.Command{
		Use:   "health NAME --cluster C [-n NS]",
		Short: "Show whether a release is healthy: its verdict, ready pods and health probe",
		Long: `Show a release's health: its verdict (as status has it), how many of its
workloads and pods are ready and, when the release is an application's that
declares a health endpoint (probes.health_path), what each ready pod answered
there, asked through the cluster's API server. A pod that answers other than
200 to 399 makes the verdict degraded.`,
		Example: `  slipway release health web -c prod -n web
  slipway release health web -c prod -n web -o json | jq -r .verdict`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_GetDeploymentHealth", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, 0)})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &releasesv1.GetDeploymentHealthResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return a.printHealth(got)
		},
	}
	rf.add(cmd, a)
	return cmd
}

// printHealth prints the verdict and counts, then a table of the probed
// pods.
func (a *app) printHealth(h *releasesv1.GetDeploymentHealthResponse) error {
	d := &details{}
	verdict := enum(h.GetVerdict())
	if a.colour() {
		verdict = paint(verdict)
	}
	d.add("Verdict", verdict)
	if h.GetMessage() != "" {
		d.add("Message", h.GetMessage())
	}
	d.add("Release", enum(h.GetReleaseStatus()))
	d.add("Workloads", fmt.Sprintf("%d/%d ready", h.GetReadyWorkloadCount(), h.GetWorkloadCount()))
	d.add("Pods", fmt.Sprintf("%d/%d ready", h.GetReadyPodCount(), h.GetPodCount()))
	p := h.GetProbe()
	if p != nil {
		d.add("Probe", fmt.Sprintf("GET %s on port %s", p.GetPath(), p.GetPort()))
	}
	d.add("Observed", stamp(h.GetObserveTime()))
	if err := d.table().write(a.env.Stdout, false, false); err != nil {
		return err
	}
	if len(p.GetPods()) == 0 {
		return nil
	}
	fmt.Fprintln(a.env.Stdout)
	t := newTable("POD", "HEALTHY", "STATUS", "LATENCY", "MESSAGE")
	for _, pp := range p.GetPods() {
		healthy, code := "no", "-"
		if pp.GetHealthy() {
			healthy = "yes"
		}
		if pp.GetStatusCode() != 0 {
			code = strconv.Itoa(int(pp.GetStatusCode()))
		}
		t.row(pp.GetPod(), healthy, code, pp.GetLatency().AsDuration().Round(time.Millisecond).String(), orDash(truncate(pp.GetMessage(), 70)))
	}
	if n := p.GetSkippedPodCount(); n > 0 {
		t.row("...", "", "", "", fmt.Sprintf("(%d more ready pods not asked)", n))
	}
	return t.write(a.env.Stdout, !a.opts.noHeaders, a.colour())
}

func (a *app) releaseMetricsCmd() *cobra.Command {
	var rf releaseFlags
	var lf listFlags
	var prometheus bool
	cmd := &cobra.Command{
		Use:   "metrics NAME --cluster C [-n NS] [--prometheus]",
		Short: "Show the CPU and memory each pod of a release uses",
		Long: `Show the CPU and memory each pod of a release uses now, from the cluster's
metrics API (metrics.k8s.io, served by metrics-server), beside what its
containers request and are limited to, and their restarts. A cluster that
does not serve the metrics API answers 501, saying what is missing.

With --prometheus, also print what each pod's Prometheus endpoint answers
(the application's probes.metrics_port), for the first 10 pods: at most
256 KiB each.`,
		Example: `  slipway release metrics web -c prod -n web
  slipway release metrics web -c prod -n web --prometheus
  slipway release metrics web -c prod -n web -o json | jq '.total'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			q := nsQuery(rf.namespace, 0)
			if prometheus {
				q["include_prometheus"] = []string{"true"}
				if lf.pageSize == 0 && lf.pageToken == "" {
					lf.pageSize = 10 // only the first page's pods are scraped
				}
			}
			body, err := a.list(cmd.Context(), c, request{op: "ReleasesService_GetDeploymentMetrics", params: []string{org, cluster, args[0]}, query: q}, "pods", &lf)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(body, nil)
			}
			got := &releasesv1.GetDeploymentMetricsResponse{}
			if err := unmarshalOpts.Unmarshal(body, got); err != nil {
				return fmt.Errorf("read the server's answer: %w", err)
			}
			return a.printMetrics(got)
		},
	}
	rf.add(cmd, a)
	lf.add(cmd)
	cmd.Flags().BoolVar(&prometheus, "prometheus", false, "also print each pod's Prometheus endpoint's answer (the first 10 pods)")
	return cmd
}

// printMetrics prints a table of the pods' use with the total, then the
// Prometheus answers.
func (a *app) printMetrics(m *releasesv1.GetDeploymentMetricsResponse) error {
	t := newTable("POD", "CPU", "MEMORY", "CPU REQ/LIMIT", "MEMORY REQ/LIMIT", "RESTARTS")
	var all podSpec
	for _, p := range m.GetPods() {
		var ps podSpec
		for _, c := range p.GetContainers() {
			ps.add(c)
			all.add(c)
		}
		req, lim, restarts := ps.req, ps.limits(), ps.restarts
		cpu, mem := millicores(p.GetUsage().GetCpuMillicores()), quantityBytes(p.GetUsage().GetMemoryBytes())
		if p.GetUsageMissing() {
			cpu, mem = "-", "-"
		}
		t.row(p.GetPod(), cpu, mem, reqLimit(req.cpu, lim.cpu, millicores), reqLimit(req.mem, lim.mem, quantityBytes), strconv.Itoa(int(restarts)))
	}
	// The total's use is the release's; its requests, limits and
	// restarts are those of the pods shown.
	t.row(fmt.Sprintf("TOTAL (%d pods)", m.GetPodCount()), millicores(m.GetTotal().GetCpuMillicores()), quantityBytes(m.GetTotal().GetMemoryBytes()),
		reqLimit(all.req.cpu, all.limits().cpu, millicores), reqLimit(all.req.mem, all.limits().mem, quantityBytes), strconv.Itoa(int(all.restarts)))
	if err := t.write(a.env.Stdout, !a.opts.noHeaders, a.colour()); err != nil {
		return err
	}
	if m.GetObserveTime() != nil {
		fmt.Fprintf(a.env.Stdout, "\nSampled %s over %s.\n", stamp(m.GetObserveTime()), m.GetWindow().AsDuration())
	}
	for _, p := range m.GetPods() {
		sc := p.GetPrometheus()
		if sc == nil {
			continue
		}
		fmt.Fprintf(a.env.Stdout, "\n# pod %s: GET %s on port %s", p.GetPod(), sc.GetPath(), sc.GetPort())
		switch {
		case sc.GetMessage() != "":
			fmt.Fprintf(a.env.Stdout, ": %s\n", sc.GetMessage())
			continue
		case sc.GetTruncated():
			fmt.Fprint(a.env.Stdout, " (cut at 256 KiB)")
		}
		fmt.Fprintf(a.env.Stdout, "\n%s", sc.GetText())
		if !strings.HasSuffix(sc.GetText(), "\n") {
			fmt.Fprintln(a.env.Stdout)
		}
	}
	return nil
}

// amounts is CPU in millicores and memory in bytes.
type amounts struct{ cpu, mem int64 }

// podSpec sums containers' requests, limits and restarts; a limit of
// containers one of which has none is none.
type podSpec struct {
	req, lim               amounts
	noCPULimit, noMemLimit bool
	restarts               int32
}

func (p *podSpec) add(c *releasesv1.ContainerMetrics) {
	p.req.cpu += c.GetRequests().GetCpuMillicores()
	p.req.mem += c.GetRequests().GetMemoryBytes()
	p.lim.cpu += c.GetLimits().GetCpuMillicores()
	p.lim.mem += c.GetLimits().GetMemoryBytes()
	p.noCPULimit = p.noCPULimit || c.GetLimits().GetCpuMillicores() == 0
	p.noMemLimit = p.noMemLimit || c.GetLimits().GetMemoryBytes() == 0
	p.restarts += c.GetRestartCount()
}

func (p *podSpec) limits() amounts {
	l := p.lim
	if p.noCPULimit {
		l.cpu = 0
	}
	if p.noMemLimit {
		l.mem = 0
	}
	return l
}

// reqLimit prints a request and a limit, "-" for none (a limit of 0 is
// no limit).
func reqLimit(req, lim int64, f func(int64) string) string {
	r, l := "-", "-"
	if req != 0 {
		r = f(req)
	}
	if lim != 0 {
		l = f(lim)
	}
	return r + "/" + l
}

// millicores prints CPU as Kubernetes writes it: "250m", "2", "0" for
// none.
func millicores(m int64) string {
	if m != 0 && m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	if m == 0 {
		return "0"
	}
	return strconv.FormatInt(m, 10) + "m"
}

// quantityBytes prints memory in binary units as Kubernetes writes them
// ("64Mi"), to one decimal where it is not whole.
func quantityBytes(b int64) string {
	units := []string{"", "Ki", "Mi", "Gi", "Ti"}
	v, i := float64(b), 0
	for v >= 1024 && i < len(units)-1 {
		v, i = v/1024, i+1
	}
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}
