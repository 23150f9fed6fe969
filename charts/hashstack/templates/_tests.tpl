{{/*
`helm test` pods for one service ("root", "name", "checks": list of checks of
files/helm-test.py). The pods run the service's own image with its Python (no other
image can be assumed to be reachable), under the same restricted securityContext as the
services, plus the two NetworkPolicies that let exactly these pods reach the service.
*/}}
{{- define "hashstack.tests" -}}
{{- $root := .root }}
{{- $v := index .root.Values .name }}
{{- if and $v.enabled .root.Values.tests.enabled }}
{{- $testName := printf "%s-test" .name }}
{{- $url := printf "%s/" (include "hashstack.serviceURL" .) }}
{{- range $check := .checks }}
---
apiVersion: v1
kind: Pod
metadata:
  name: {{ printf "%s-test-%s" (include "hashstack.fullname" $) $check | trunc 63 | trimSuffix "-" }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hashstack.labels" (dict "root" $root "name" $testName "component" "test" "version" (include "hashstack.imageTag" $)) | nindent 4 }}
  annotations:
    {{- with $root.Values.tests.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "hashstack.serviceAccountName" $ }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with include "hashstack.imagePullSecrets" $ | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  securityContext:
    {{- include "hashstack.podSecurityContext" $root | nindent 4 }}
  containers:
    - name: {{ $check }}
      image: {{ include "hashstack.image" $ | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command:
        - python
        - -c
        - {{ $root.Files.Get "files/helm-test.py" | quote }}
        - {{ $check }}
        - {{ $url | quote }}
        - {{ $root.Values.tests.timeoutSeconds | quote }}
      resources:
        {{- toYaml $root.Values.tests.resources | nindent 8 }}
      securityContext:
        {{- include "hashstack.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
{{- end }}
{{- if include "hashstack.networkPolicyEnabled" .root }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "hashstack.fullname" (dict "root" $root "name" $testName) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hashstack.labels" (dict "root" $root "name" $testName "component" "test") | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "hashstack.selectorLabels" (dict "root" $root "name" $testName) | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  egress:
    - to:
        - podSelector:
            matchLabels:
              {{- include "hashstack.selectorLabels" . | nindent 14 }}
      ports:
        - port: {{ include "hashstack.containerPort" . }}
          protocol: TCP
{{ include "hashstack.allowIngressFrom" (dict "root" $root "from" $testName "to" .name "port" (include "hashstack.containerPort" . | int)) }}
{{- end }}
{{- end }}
{{- end }}
