{{/* Names and labels shared by every template. */}}
{{- define "churnwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "churnwire.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "churnwire.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "churnwire.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "churnwire.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "churnwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "gateway"). */}}
{{- define "churnwire.selector" -}}
app.kubernetes.io/name: {{ include "churnwire.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "churnwire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "churnwire.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "churnwire.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "churnwire.secretName" -}}
{{- if .Values.secrets.externalSecret.enabled }}
{{- printf "%s-env" (include "churnwire.fullname" .) }}
{{- else }}
{{- required "secrets.existingSecret (or secrets.externalSecret.enabled) is required" .Values.secrets.existingSecret }}
{{- end }}
{{- end }}

{{/* Environment shared by every churnwire container: the ConfigMap, then the Secret. */}}
{{- define "churnwire.envFrom" -}}
- configMapRef:
    name: {{ include "churnwire.fullname" . }}
- secretRef:
    name: {{ include "churnwire.secretName" . }}
{{- end }}

{{- define "churnwire.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "churnwire.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Writable paths under a read-only root: CHURNWIRE_HOME and /tmp. */}}
{{- define "churnwire.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "churnwire.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{/* The model registry: an emptyDir filled from S3 by an init container and a sidecar. */}}
{{- define "churnwire.modelSync" -}}
{{- if .Values.models.s3Uri }}
- name: model-sync
  image: {{ .Values.models.syncImage }}
  imagePullPolicy: IfNotPresent
  command: ["/bin/sh", "-c"]
  args:
    - while true; do aws s3 sync --delete --only-show-errors {{ .Values.models.s3Uri | quote }} /models; sleep {{ .Values.models.syncIntervalSeconds }}; done
  securityContext:
    {{- include "churnwire.containerSecurityContext" . | nindent 4 }}
  resources:
    requests: {cpu: 10m, memory: 64Mi}
    limits: {cpu: 200m, memory: 256Mi}
  volumeMounts:
    - name: models
      mountPath: /models
    - name: tmp
      mountPath: /tmp
    - name: aws-home
      mountPath: /home/aws
  env:
    - name: HOME
      value: /home/aws
{{- end }}
{{- end }}

{{- define "churnwire.modelInit" -}}
{{- if .Values.models.s3Uri }}
- name: model-fetch
  image: {{ .Values.models.syncImage }}
  imagePullPolicy: IfNotPresent
  command: ["aws", "s3", "sync", "--only-show-errors", {{ .Values.models.s3Uri | quote }}, "/models"]
  securityContext:
    {{- include "churnwire.containerSecurityContext" . | nindent 4 }}
  resources:
    requests: {cpu: 10m, memory: 64Mi}
    limits: {cpu: 500m, memory: 256Mi}
  volumeMounts:
    - name: models
      mountPath: /models
    - name: tmp
      mountPath: /tmp
    - name: aws-home
      mountPath: /home/aws
  env:
    - name: HOME
      value: /home/aws
{{- end }}
{{- end }}

{{- define "churnwire.modelVolumes" -}}
- name: models
  emptyDir:
    sizeLimit: 1Gi
- name: aws-home
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{/* Pod-level scheduling settings shared by every Deployment. */}}
{{- define "churnwire.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
