{{/*
NetworkPolicies of one service ("root", "name"). Everything of the release is denied by
networkpolicy.yaml; these allow exactly what the service needs:
  - `<release>-<name>`: ingress from outside when `<name>.public`, scraping of the
    `metrics` port (only) when the ServiceMonitor is on; egress to the services named in `<name>.links` and to etcd
    when `<name>.usesEtcd`.
  - `<release>-<target>-from-<name>`: the matching ingress on each linked service (and
    on etcd), so each allowed path is opened at both ends and nothing else.
*/}}
{{- define "hashstack.networkpolicies" -}}
{{- $root := .root }}
{{- $v := index .root.Values .name }}
{{- if include "hashstack.networkPolicyEnabled" .root }}
{{- $port := include "hashstack.containerPort" . | int }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
{{ include "hashstack.metadata" . }}
spec:
  podSelector:
    matchLabels:
      {{- include "hashstack.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  {{- $ingress := include "hashstack.npIngressRules" . | trim }}
  {{- $egress := include "hashstack.npEgressRules" . | trim }}
  {{- /* No rules: the key is left out (the API server drops an empty list; the policyTypes
  above still deny all). */}}
  {{- with $ingress }}
  ingress:
    {{- . | nindent 4 }}
  {{- end }}
  {{- with $egress }}
  egress:
    {{- . | nindent 4 }}
  {{- end }}
{{- range $target := $v.links | default dict | values | uniq | sortAlpha }}
{{ include "hashstack.allowIngressFrom" (dict "root" $root "from" $.name "to" $target "port" $port) }}
{{- end }}
{{- if and $v.usesEtcd $root.Values.etcd.enabled }}
{{ include "hashstack.allowIngressFrom" (dict "root" $root "from" $.name "to" "etcd" "port" 2379) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
`<release>-<to>-from-<from>`: pods `to` accept `port` from pods `from` (both of this
release).
*/}}
{{- define "hashstack.allowIngressFrom" -}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ printf "%s-%s-from-%s" (include "hashstack.prefix" .root) .to .from | trunc 63 | trimSuffix "-" }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.labels" (dict "root" .root "name" .to "component" "network-policy") | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "hashstack.selectorLabels" (dict "root" .root "name" .to) | nindent 6 }}
  policyTypes:
    - Ingress
  ingress:
    - from:
        - podSelector:
            matchLabels:
              {{- include "hashstack.selectorLabels" (dict "root" .root "name" .from) | nindent 14 }}
      ports:
        - port: {{ .port }}
          protocol: TCP
{{- end }}

{{/* Ingress rules of a service's own NetworkPolicy. */}}
{{- define "hashstack.npIngressRules" -}}
{{- $root := .root }}
{{- $v := index .root.Values .name }}
{{- $np := .root.Values.networkPolicy }}
{{- $port := include "hashstack.containerPort" . | int }}
{{- if $v.public }}
- ports:
    - port: {{ $port }}
      protocol: TCP
  {{- with $np.ingressFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- if $root.Values.metrics.serviceMonitor.enabled }}
# The scraper reaches the metrics port only, never the API.
- ports:
    - port: {{ include "hashstack.metricsPort" . }}
      protocol: TCP
  {{- with $np.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Egress rules of a service's own NetworkPolicy (DNS is allowed release-wide). */}}
{{- define "hashstack.npEgressRules" -}}
{{- $root := .root }}
{{- $v := index .root.Values .name }}
{{- $np := .root.Values.networkPolicy }}
{{- $port := include "hashstack.containerPort" . | int }}
{{- range $target := $v.links | default dict | values | uniq | sortAlpha }}
- to:
    - podSelector:
        matchLabels:
          {{- include "hashstack.selectorLabels" (dict "root" $root "name" $target) | nindent 10 }}
  ports:
    - port: {{ $port }}
      protocol: TCP
{{- end }}
{{- if $v.usesEtcd }}
{{- if $root.Values.etcd.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "hashstack.selectorLabels" (dict "root" $root "name" "etcd") | nindent 10 }}
  ports:
    - port: 2379
      protocol: TCP
{{- else }}
{{- $ports := list }}
{{- range $endpoint := $root.Values.externalEtcd.endpoints }}
{{- $hostPort := (urlParse $endpoint).host }}
{{- $ports = append $ports (regexFind "[0-9]+$" (regexFind ":[0-9]+$" $hostPort) | default "2379" | int) }}
{{- end }}
- ports:
    {{- range $ports | uniq }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.externalEtcdTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
{{- if $root.Values.tracing.enabled }}
{{- $otlp := urlParse $root.Values.tracing.endpoint }}
- ports:
    - port: {{ regexFind ":[0-9]+$" $otlp.host | trimPrefix ":" | default (ternary "443" "4318" (eq $otlp.scheme "https")) }}
      protocol: TCP
  {{- with $np.tracingTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
