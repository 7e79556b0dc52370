#!/usr/bin/env bash
# Golden outputs at fixed seeds: a tiny phantom chain (discover, width-8 SG and MG pre-training,
# a one-epoch fine-tune) whose patterns.csv hash, metrics.csv, weight checksums and fine-tune
# metrics must not change under a refactor. Prints JSON and writes OUTDIR/golden.json; compare two
# runs (before/after) by their JSON, ignoring the timing columns cubes_per_s and seconds.
# Usage: benchmarks/golden_outputs.sh REPO OUTDIR   (about 3 minutes on 2 cores)
set -euo pipefail
REPO=$1; OUT=$2
S="$REPO/.venv/bin/semgen"
export SEMGEN_QUIET=1 OMP_NUM_THREADS=1
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
  echo "golden_outputs.sh: $OUT exists and is not empty; choose a new folder" >&2; exit 2
fi
mkdir -p "$OUT"
cd "$OUT"
$S phantoms --out ph --n 8 --seed 0 --spacing 3 3 4 --workers 1 > /dev/null
$S prepare ph/images --out cohort --modality ct > /dev/null 2>&1
$S discover cohort --out patterns --classes 4 --instances 4 --val-instances 2 --patch 32 32 16 --ae-epochs 2 --ae-shape 64 64 32 --seed 0 > /dev/null 2>&1
for m in sg mg; do
  if [ $m = sg ]; then flags="--semantic"; else flags="--no-semantic"; fi
  $S pretrain patterns --out run-$m $flags --width 8 --epochs 2 --batch-size 4 --seed 0 --device cpu --no-figures > /dev/null 2>&1
done
$S finetune --task classify --data ph --init run-sg/checkpoints/best.pt --out ft --epochs 1 --width 8 --seed 0 --patch 32 32 16 --device cpu > /dev/null 2>&1 || echo "finetune failed"
"$REPO/.venv/bin/python" - <<'PY'
import hashlib, json, pathlib, torch
out = {}
out["patterns.csv"] = hashlib.sha256(pathlib.Path("patterns/patterns.csv").read_bytes()).hexdigest()
for m in ("sg", "mg"):
    out[f"{m}/metrics.csv"] = pathlib.Path(f"run-{m}/metrics.csv").read_text()
    sd = torch.load(f"run-{m}/checkpoints/last.pt", weights_only=True)["state_dict"]
    out[f"{m}/weights"] = float(sum(v.double().abs().sum() for v in sd.values() if v.is_floating_point()))
p = pathlib.Path("ft/metrics.json")
out["ft"] = json.loads(p.read_text()) if p.exists() else None
pathlib.Path("golden.json").write_text(json.dumps(out, indent=1, default=str))
print(json.dumps({k: (v if not isinstance(v, str) or len(v) < 80 else v[:200]) for k, v in out.items()}, default=str)[:3000])
PY
