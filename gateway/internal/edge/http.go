package edge

import (
	_ "embed"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/cors"
	"sigs.k8s.io/yaml"
)

// withCORS answers browsers from the allowed origins; none: no CORS headers.
func withCORS(origins []string, h http.Handler) http.Handler {
	if len(origins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"},
		ExposedHeaders:   []string{"X-Request-Id", "Retry-After", "Location", "Traceparent", ReleaseStatusHeader, ReleaseRevisionHeader},
		AllowCredentials: false,
		MaxAge:           600,
	}).Handler(h)
}

// yamlMarshaler accepts YAML request bodies (values files are YAML) and
// answers in YAML when asked to; it converts through the JSON mapping so
// field names and types are exactly the JSON API's.
type yamlMarshaler struct{ json *runtime.JSONPb }

func (m *yamlMarshaler) ContentType(any) string { return "application/yaml" }

func (m *yamlMarshaler) Marshal(v any) ([]byte, error) {
	j, err := m.json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

func (m *yamlMarshaler) Unmarshal(data []byte, v any) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return m.json.Unmarshal(j, v)
}

func (m *yamlMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return m.Unmarshal(data, v)
	})
}

func (m *yamlMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}

//go:embed docs.html
var docsPage []byte

// serveDocs serves a page that renders the OpenAPI document for browsing.
func serveDocs(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	_, _ = w.Write(docsPage)
}
