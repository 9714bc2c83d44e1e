{{- /*
slipway.keyPair: the data (base64 values, as JSON) of a Secret holding an
Ed25519 key pair. Takes a dict:
  ctx      the root context
  name     the Secret's name
  private  key of the PEM (PKCS#8) private key
  public   key of the PEM (PKIX) public key
  hint     what to do when the public key cannot be derived (for the error)

Helm's genPrivateKey makes Ed25519 keys (PKCS#8 PEM, what the binaries read)
but Sprig has no function that derives a public key. A self-signed
certificate over the key carries its SubjectPublicKeyInfo, whose DER for
Ed25519 is a fixed 12-byte header plus the 32-byte key: cut it out of the
certificate and PEM-encode it (PKIX, what the binaries read).

lookup keeps the pair across upgrades: a Secret of that name holding both
keys is reused. It returns nothing under `helm template` and client-side dry
runs, so those show a fresh pair.
*/ -}}
{{- define "slipway.keyPair" -}}
{{- $old := (lookup "v1" "Secret" .ctx.Release.Namespace .name).data | default dict -}}
{{- if and (hasKey $old .private) (hasKey $old .public) -}}
{{- dict .private (get $old .private) .public (get $old .public) | toJson -}}
{{- else -}}
{{- $key := genPrivateKey "ed25519" -}}
{{- $cert := genSelfSignedCertWithKey .name nil nil 1 $key -}}
{{- $der := $cert.Cert | replace "-----BEGIN CERTIFICATE-----" "" | replace "-----END CERTIFICATE-----" "" | nospace | b64dec -}}
{{- $spkiHeader := "\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00" -}}
{{- $parts := splitList $spkiHeader $der -}}
{{- if ne (len $parts) 2 -}}
{{- fail (printf "slipway: could not derive the public key of Secret %s; %s" .name .hint) -}}
{{- end -}}
{{- $pub := index $parts 1 | substr 0 32 -}}
{{- $pubPEM := printf "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" (print $spkiHeader $pub | b64enc) -}}
{{- dict .private ($key | b64enc) .public ($pubPEM | b64enc) | toJson -}}
{{- end -}}
{{- end -}}
