package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// ClientVersion is the version of this build: the one set at link time
// (-ldflags "-X main.version=..."), else the module version or VCS
// revision recorded in the build info.
func ClientVersion(linked string) string {
	if linked != "" {
		return linked
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return "devel+" + rev + dirty
	}
	return "devel"
}

func (a *app) versionCmd() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and what the server says of its own",
		Long: `Print the client's version and the server's. The gateway does not report
its build version today; the command then says so, after checking that
the server answers (its OpenAPI document, /api/v1/openapi.json).`,
		Example: `  slipway version
  slipway version --client -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := map[string]any{"client": map[string]string{"version": a.env.Version, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}}
			if !clientOnly {
				out["server"] = a.serverVersion(cmd)
			}
			if a.structured() {
				b, err := json.Marshal(out)
				if err != nil {
					return err
				}
				return a.show(b, nil)
			}
			fmt.Fprintf(a.env.Stdout, "Client: %s (%s, %s/%s)\n", a.env.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if s, ok := out["server"].(map[string]string); ok {
				fmt.Fprintf(a.env.Stdout, "Server: %s: %s\n", s["url"], s["version"])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only the client's version (no server needed)")
	return cmd
}

// serverVersion asks the server what it is. The gateway serves no
// version route: its OpenAPI document is read to tell whether it answers,
// and its info.version, when ever set, is reported.
func (a *app) serverVersion(cmd *cobra.Command) map[string]string {
	t, err := a.target()
	if err != nil {
		return map[string]string{"url": "-", "version": "no server configured"}
	}
	c := a.newClient(t)
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, c.server+"/api/v1/openapi.json", nil)
	if err != nil {
		return map[string]string{"url": c.server, "version": err.Error()}
	}
	c.headers(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return map[string]string{"url": c.server, "version": "unreachable: " + err.Error()}
	}
	defer resp.Body.Close()
	var doc struct {
		Info struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&doc) != nil {
		return map[string]string{"url": c.server, "version": fmt.Sprintf("not a Slipway gateway? GET /api/v1/openapi.json answered %d", resp.StatusCode)}
	}
	v := doc.Info.Version
	if v == "" || v == "version not set" {
		v = "the server does not report its version"
	}
	return map[string]string{"url": c.server, "version": v}
}
