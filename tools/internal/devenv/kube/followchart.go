package kube

import (
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
)

// FollowChart packages, in dir, a chart named name of one Deployment of
// two pods on the simulated nodes whose one container, FollowContainer,
// reads the followed log (FollowLogFile): the release tests follow the
// logs of. It returns the archive's bytes, as uploads send them.
func FollowChart(dir, name string) ([]byte, error) {
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: "0.1.0"},
		Templates: []*chart.File{{Name: "templates/deployment.yaml", Data: fmt.Appendf(nil, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 2
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - {name: %s, image: "registry.example/%s:1"}
      tolerations:
        - {key: %s, operator: Exists, effect: NoSchedule}
`, FollowContainer, name, NodeAnnotation)}},
	}
	file, err := chartutil.Save(ch, dir)
	if err != nil {
		return nil, fmt.Errorf("package the follow chart: %w", err)
	}
	return os.ReadFile(filepath.Clean(file))
}
