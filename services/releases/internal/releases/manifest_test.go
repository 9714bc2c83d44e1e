package releases

import (
	"strings"
	"testing"
)

func TestSplitManifest(t *testing.T) {
	m := `---
# Source: web/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: web-db
  namespace: shop
stringData:
  password: hunter2-canary
data:
  token: c2VjcmV0LWNhbmFyeQ==
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
---
# Source: web/templates/empty.yaml
`
	docs := splitManifest(m)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2: %+v", len(docs), docs)
	}
	s, d := docs[0], docs[1]
	if s.Kind != "Secret" || s.Name != "web-db" || s.Namespace != "shop" || s.Source != "web/templates/secret.yaml" {
		t.Errorf("secret document = %+v", s)
	}
	for _, canary := range []string{"hunter2-canary", "c2VjcmV0LWNhbmFyeQ=="} {
		if strings.Contains(s.YAML, canary) {
			t.Errorf("secret value %q shown:\n%s", canary, s.YAML)
		}
	}
	if !strings.Contains(s.YAML, "password: "+redacted) || !strings.Contains(s.YAML, "token: "+redacted) {
		t.Errorf("secret keys not kept with redacted values:\n%s", s.YAML)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" || d.Name != "web" || !strings.Contains(d.YAML, "kind: Deployment") {
		t.Errorf("deployment document = %+v", d)
	}
}
