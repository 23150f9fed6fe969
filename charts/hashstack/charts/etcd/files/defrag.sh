#!/bin/sh
# shellcheck shell=bash
# Defragments every member, one at a time (the defrag CronJob): frees the space that
# compaction left inside each member's database file. A member is briefly unavailable
# while it defragments; the others keep serving.
set -u
: "${CLUSTER_ENDPOINTS:?}"
etcdctl --endpoints="$CLUSTER_ENDPOINTS" --dial-timeout=5s --command-timeout=120s defrag --cluster
