{{/*
Every object of one service, from one set of named templates. Each takes a dict with
"root" (the top-level context) and "name" (the service's key in values.yaml).
*/}}

{{/* All objects of a service; nothing when `<name>.enabled` is false. */}}
{{- define "hashstack.component" -}}
{{- $v := index .root.Values .name }}
{{- if $v.enabled }}
{{- include "hashstack.configmap" . }}
{{- include "hashstack.serviceaccount" . }}
{{- include "hashstack.deployment" . }}
{{- include "hashstack.service" . }}
{{- include "hashstack.headlessService" . }}
{{- include "hashstack.pdb" . }}
{{- include "hashstack.hpa" . }}
{{- include "hashstack.ingress" . }}
{{- include "hashstack.httproute" . }}
{{- include "hashstack.servicemonitor" . }}
{{- include "hashstack.networkpolicies" . }}
{{- end }}
{{- end }}

{{/* metadata: name, namespace, labels. */}}
{{- define "hashstack.metadata" -}}
metadata:
  name: {{ include "hashstack.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.serviceLabels" . | nindent 4 }}
{{- end }}

{{/* The service's environment, in a ConfigMap whose checksum rolls the pods. */}}
{{- define "hashstack.configmap" }}
---
apiVersion: v1
kind: ConfigMap
{{ include "hashstack.metadata" . }}
data:
  {{- include "hashstack.env" . | nindent 2 }}
{{- end }}

{{- define "hashstack.serviceaccount" }}
{{- $sa := (index .root.Values .name).serviceAccount }}
{{- if $sa.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "hashstack.serviceAccountName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.serviceLabels" . | nindent 4 }}
  {{- with $sa.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The services never talk to the Kubernetes API.
automountServiceAccountToken: false
{{- end }}
{{- end }}

{{/*
A service's user-given containers (`sidecars` or `initContainers`): each gets the chart's
container securityContext under its own, so it stays "restricted" unless it says otherwise.
*/}}
{{- define "hashstack.extraContainers" -}}
{{- $root := .root }}
{{- $out := list }}
{{- range .containers }}
{{- $ctx := mergeOverwrite (deepCopy $root.Values.containerSecurityContext) (deepCopy (.securityContext | default dict)) }}
{{- $out = append $out (mergeOverwrite (deepCopy .) (dict "securityContext" $ctx)) }}
{{- end }}
{{- with $out }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* Names in a list of named items (containers, volumes, mounts) that appear twice: refused. */}}
{{- define "hashstack.refuseRepeats" -}}
{{- $seen := dict }}
{{- range .items }}
{{- $key := toString (get . $.key) }}
{{- if hasKey $seen $key }}
{{- fail (printf "%s: %s %q appears twice (the chart's own or yours); give it another name" $.where $.key $key) }}
{{- end }}
{{- $_ := set $seen $key true }}
{{- end }}
{{- end }}

{{/* The pod's volumes and the container's mounts. */}}
{{- define "hashstack.volumeMounts" -}}
{{- $v := index .root.Values .name }}
- name: tmp
  mountPath: /tmp
{{- if $v.dev.writableApp }}
- name: app
  mountPath: /app
{{- end }}
{{- if and $v.usesEtcd (include "hashstack.etcdTLS" .root) }}
- name: etcd-tls
  mountPath: /etc/hashstack/etcd-tls
  readOnly: true
{{- end }}
{{- with $v.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "hashstack.volumes" -}}
{{- $v := index .root.Values .name }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- if $v.dev.writableApp }}
- name: app
  emptyDir: {}
{{- end }}
{{- if and $v.usesEtcd (include "hashstack.etcdTLS" .root) }}
- name: etcd-tls
  secret:
    secretName: {{ include "hashstack.etcdTLSSecret" .root }}
    defaultMode: 0440
{{- end }}
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* One HTTP probe on the container's `http` port. */}}
{{- define "hashstack.probe" -}}
httpGet:
  path: {{ default .path .probe.path }}
  port: http
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}

{{- define "hashstack.deployment" }}
{{- $root := .root }}
{{- $v := index .root.Values .name }}
{{- $env := include "hashstack.env" . | fromYaml }}
{{- $seen := dict }}
{{- range $v.extraEnv }}
{{- if or (hasKey $env .name) (hasKey $seen .name) }}
{{- fail (printf "%s.extraEnv: %s is set twice (config, the chart or extraEnv itself)" $.name .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- end }}
{{- $where := printf "%s (extraVolumes, extraVolumeMounts, sidecars, initContainers)" .name }}
{{- include "hashstack.refuseRepeats" (dict "items" (include "hashstack.volumes" . | fromYamlArray) "key" "name" "where" $where) }}
{{- include "hashstack.refuseRepeats" (dict "items" (include "hashstack.volumeMounts" . | fromYamlArray) "key" "mountPath" "where" $where) }}
{{- include "hashstack.refuseRepeats" (dict "items" (concat (list (dict "name" .name)) ($v.sidecars | default list)) "key" "name" "where" $where) }}
{{- include "hashstack.refuseRepeats" (dict "items" (concat (list (dict "name" "copy-app")) ($v.initContainers | default list)) "key" "name" "where" $where) }}
{{- /* The memory store counts in one process: a second pod would repeat its numbers. */}}
{{- $singlePod := eq (toString (dig "config" "STORE" "" $v)) "memory" }}
{{- if and $singlePod (or (gt (int $v.replicaCount) 1) (dig "autoscaling" "enabled" false $v)) }}
{{- fail (printf "%s.config.STORE=memory keeps the counter in one pod, so %s.replicaCount must be 1 and %s.autoscaling.enabled false (a second pod would hand out the same numbers again); use STORE=etcd to run more pods" .name .name .name) }}
{{- end }}
---
apiVersion: apps/v1
kind: Deployment
{{ include "hashstack.metadata" . }}
spec:
  {{- if not (dig "autoscaling" "enabled" false $v) }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "hashstack.selectorLabels" . | nindent 6 }}
  strategy:
    {{- if $singlePod }}
    # The old pod stops before the new one starts: never two counters at once.
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      # Never below the wanted replicas during a rollout: new pods first.
      maxUnavailable: 0
      maxSurge: {{ $v.maxSurge }}
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "hashstack.podLabels" . | nindent 8 }}
      annotations:
        checksum/config: {{ include "hashstack.env" . | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "hashstack.serviceAccountName" . }}
      automountServiceAccountToken: false
      # Service links would add *_SERVICE_HOST variables nobody reads.
      enableServiceLinks: false
      {{- with include "hashstack.imagePullSecrets" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      securityContext:
        {{- include "hashstack.podSecurityContext" $root | nindent 8 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- if $v.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $v.topologySpread.topologyKeys }}
        - maxSkew: {{ $v.topologySpread.maxSkew }}
          topologyKey: {{ . }}
          whenUnsatisfiable: {{ $v.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "hashstack.selectorLabels" $ | nindent 14 }}
          matchLabelKeys:
            - pod-template-hash
        {{- end }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if or $v.dev.writableApp $v.initContainers }}
      initContainers:
      {{- end }}
      {{- if $v.dev.writableApp }}
        # skaffold file sync writes into /app: give it a writable copy of the image's /app
        # on an emptyDir, so the root filesystem itself stays read-only.
        - name: copy-app
          image: {{ include "hashstack.image" . | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          command:
            - python
            - -c
            # Copy the package, not /app itself: the emptyDir's root belongs to root, and
            # copying /app's mode onto it is not permitted for uid 10001.
            - import shutil; shutil.copytree("/app/hashstack", "/writable-app/hashstack")
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "hashstack.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: app
              mountPath: /writable-app
      {{- end }}
      {{- with include "hashstack.extraContainers" (dict "root" $root "containers" $v.initContainers) }}
        {{- . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "hashstack.image" . | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ include "hashstack.containerPort" . }}
              protocol: TCP
            - name: metrics
              containerPort: {{ include "hashstack.metricsPort" . }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "hashstack.fullname" . }}
          {{- with $v.extraEnv }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          startupProbe:
            {{- include "hashstack.probe" (dict "path" "/healthz" "probe" $v.probes.startup) | nindent 12 }}
          livenessProbe:
            {{- include "hashstack.probe" (dict "path" "/healthz" "probe" $v.probes.liveness) | nindent 12 }}
          readinessProbe:
            {{- include "hashstack.probe" (dict "path" "/readyz" "probe" $v.probes.readiness) | nindent 12 }}
          {{- if gt (int $v.preStopSleepSeconds) 0 }}
          lifecycle:
            # Keep serving while the endpoint removal reaches every node, then SIGTERM.
            preStop:
              sleep:
                seconds: {{ $v.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "hashstack.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "hashstack.volumeMounts" . | trim | nindent 12 }}
        {{- with include "hashstack.extraContainers" (dict "root" $root "containers" $v.sidecars) }}
        {{- . | nindent 8 }}
        {{- end }}
      volumes:
        {{- include "hashstack.volumes" . | trim | nindent 8 }}
{{- end }}

{{- define "hashstack.service" }}
{{- $v := index .root.Values .name }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "hashstack.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.serviceLabels" . | nindent 4 }}
  {{- with $v.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "hashstack.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $v.service.port }}
      targetPort: http
      protocol: TCP
      {{- if and (ne $v.service.type "ClusterIP") $v.service.nodePort }}
      nodePort: {{ $v.service.nodePort }}
      {{- end }}
    # Only /metrics answers here; the NetworkPolicy opens it to the scraper alone.
    - name: metrics
      port: {{ include "hashstack.metricsPort" . }}
      targetPort: metrics
      protocol: TCP
{{- end }}

{{/*
`<release>-<name>-headless` when `<name>.service.headless`: DNS answers with the address of
every ready pod, so a client that connects anew now and then (hash's pool does) spreads its
calls over all of them and finds a new pod within seconds (docs/scaling.md).
*/}}
{{- define "hashstack.headlessService" }}
{{- $v := index .root.Values .name }}
{{- if $v.service.headless }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "hashstack.headlessName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.serviceLabels" . | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "hashstack.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ include "hashstack.containerPort" . }}
      targetPort: http
      protocol: TCP
{{- end }}
{{- end }}

{{- define "hashstack.pdb" }}
{{- $v := index .root.Values .name }}
{{- if $v.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
{{ include "hashstack.metadata" . }}
spec:
  maxUnavailable: {{ $v.pdb.maxUnavailable }}
  # A pod that never got ready may be evicted even when the budget is spent.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "hashstack.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{- define "hashstack.hpa" }}
{{- $v := index .root.Values .name }}
{{- if dig "autoscaling" "enabled" false $v }}
{{- $a := $v.autoscaling }}
{{- if lt (int $a.maxReplicas) (int $a.minReplicas) }}
{{- fail (printf "%s.autoscaling.maxReplicas (%v) is below minReplicas (%v)" .name $a.maxReplicas $a.minReplicas) }}
{{- end }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
{{ include "hashstack.metadata" . }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "hashstack.fullname" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- with $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "hashstack.ingress" }}
{{- $v := index .root.Values .name }}
{{- if dig "ingress" "enabled" false $v }}
{{- $fullname := include "hashstack.fullname" . }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $fullname }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.serviceLabels" . | nindent 4 }}
  {{- with $v.ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $v.ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $v.ingress.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range $v.ingress.hosts }}
    - {{- with .host }}
      host: {{ . | quote }}
      {{- end }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ $fullname }}
                port:
                  name: http
          {{- end }}
    {{- end }}
{{- end }}
{{- end }}

{{- define "hashstack.httproute" }}
{{- $v := index .root.Values .name }}
{{- if dig "httpRoute" "enabled" false $v }}
{{- if not $v.httpRoute.parentRefs }}
{{- fail (printf "%s.httpRoute.parentRefs: name the Gateway the route attaches to" .name) }}
{{- end }}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {{ include "hashstack.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.serviceLabels" . | nindent 4 }}
  {{- with $v.httpRoute.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- /* The Gateway API's defaults (group, kind, weight) written out, as the API server stores
  them in these atomic lists, so GitOps diffs see no change (docs/gitops.md). */}}
  {{- $parents := list }}
  {{- range $v.httpRoute.parentRefs }}
  {{- $parents = append $parents (merge (dict) . (dict "group" "gateway.networking.k8s.io" "kind" "Gateway")) }}
  {{- end }}
  parentRefs:
    {{- toYaml $parents | nindent 4 }}
  {{- with $v.httpRoute.hostnames }}
  hostnames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    - matches:
        {{- toYaml $v.httpRoute.matches | nindent 8 }}
      backendRefs:
        - group: ""
          kind: Service
          name: {{ include "hashstack.fullname" . }}
          port: {{ $v.service.port }}
          weight: 1
{{- end }}
{{- end }}

{{- define "hashstack.servicemonitor" }}
{{- $m := .root.Values.metrics.serviceMonitor }}
{{- if $m.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "hashstack.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hashstack.serviceLabels" . | nindent 4 }}
    {{- with $m.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "hashstack.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $m.interval }}
      scrapeTimeout: {{ $m.scrapeTimeout }}
{{- end }}
{{- end }}
