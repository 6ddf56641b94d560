#!/usr/bin/env bash
set -uo pipefail
cp models/profiles/H200/profile.txt /tmp/before.txt
tools/kvprobe/calibrate.sh --gpu-name H200 --only allreduce --out /tmp/ar \
  --merge-allreduce-into models/profiles/H200/profile.txt > /tmp/ar.log 2>&1
echo "rc=$?" | tee -a /tmp/ar.log
mkdir -p /tmp/pack && cp -r /tmp/ar /tmp/pack/ && cp /tmp/ar.log /tmp/pack/ && cp models/profiles/H200/profile.txt /tmp/pack/merged_profile.txt
tar czf "$OUT/pack.tgz" -C /tmp pack
grep -E "allreduce:|rc=|error" /tmp/ar.log | head
