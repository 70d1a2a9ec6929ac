#!/usr/bin/env bash
# End-to-end OpenSSF model signing: `aigis sign key` / `aigis verify key` against
# `model_signing` 1.1.x (`python -m model_signing sign key` / `verify key`) on the same generated
# model directory (page cache warm), in one run; plus the hardware bound: cores x single-core
# SHA-256 throughput (`aigis digest --threads 1` on one file).
# Prints a table; raw output goes to bench/results/<date>-<commit>-sign/.
#
#   bash bench/sign.sh            # 2.5 GiB model: 2 x 1 GiB + 512 MiB shards + small files
#   bash bench/sign.sh --smoke    # 4 x 8 MiB, aigis only (no peer), checks sign -> verify
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
sizes_mib=(1024 1024 512)
if [[ "${1:-}" == "--smoke" ]]; then smoke=1; sizes_mib=(8 8 8 8); fi
target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then cargo build --release -p aigis-cli >&2; fi
aigis="$target/release/aigis"
python="${AIGIS_PYTHON:-.venv/bin/python}"
cores=$(nproc)
pin=(); if command -v taskset > /dev/null; then pin=(taskset -c "0-$((cores - 1))"); fi

work="bench/work/sign-model"; if [[ $smoke == 1 ]]; then work="bench/work/sign-model-smoke"; fi
mkdir -p "$work"
total_mib=0
for i in "${!sizes_mib[@]}"; do
  f="$work/model-0000$((i + 1))-of-0000${#sizes_mib[@]}.safetensors"
  want=$((sizes_mib[i] * 1048576))
  if [[ ! -f "$f" || $(stat -c %s "$f") -ne $want ]]; then head -c "$want" /dev/urandom > "$f"; fi
  total_mib=$((total_mib + sizes_mib[i]))
done
echo '{"architectures": ["BenchModel"], "torch_dtype": "bfloat16"}' > "$work/config.json"
echo 'benchmark model' > "$work/README.md"

if [[ $smoke == 1 ]]; then out="bench/work/sign-results"; else out="bench/results/$(date -u +%Y%m%d)-$(git rev-parse --short HEAD)-sign"; fi
mkdir -p "$out"
{ echo "cores: $cores"; uname -a; grep -m1 'model name' /proc/cpuinfo || true; echo "model: $total_mib MiB in $work"; } > "$out/machine.txt"
keys="bench/work/sign-keys"; mkdir -p "$keys"   # throwaway key, never committed
[[ -f "$keys/ec.key" ]] || "$aigis" keygen --sign p256 -o "$keys/ec.key" > /dev/null

best() { # "best-wall best-cpu" seconds of N runs of "$@" (N = $runs); cpu = user + sys
  local bw=999999 bc=999999 t="$out/time.txt"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$t" "${pin[@]}" "$@" > /dev/null 2>> "$out/stderr.log"
    read -r w u s < "$t"
    bw=$(awk -v a="$w" -v b="$bw" 'BEGIN {print (a < b) ? a : b}')
    bc=$(awk -v a="$(echo "$u + $s" | bc -l)" -v b="$bc" 'BEGIN {print (a < b) ? a : b}')
  done
  echo "$bw $bc"
}
cat "$work"/* > /dev/null   # warm the page cache
runs=3

# The hardware bound: one core's SHA-256 over the first file, times the core count (wall
# clock, and per CPU-second, which other load on the machine does not distort).
first=$(ls "$work"/*.safetensors | head -1)
first_mib=$(( $(stat -c %s "$first") / 1048576 ))
read -r one one_cpu <<< "$(best "$aigis" digest --threads 1 "$first")"
bound=$(echo "$first_mib / $one * $cores" | bc -l)
printf 'single-core SHA-256: %.0f MiB/s wall, %.0f MiB per CPU-second; %d cores x single-core = %.0f MiB/s\n' \
  "$(echo "$first_mib / $one" | bc -l)" "$(echo "$first_mib / $one_cpu" | bc -l)" "$cores" "$bound" | tee "$out/summary.md"
uptime | tee -a "$out/summary.md"
echo | tee -a "$out/summary.md"

printf '| step | tool | wall s | MiB/s | %% of cores x 1-core | CPU s | MiB per CPU-s | wall speed-up | CPU speed-up |\n|---|---|---|---|---|---|---|---|---|\n' | tee -a "$out/summary.md"
row() { # step tool "wall cpu" "peer_wall peer_cpu"
  local w c pw pc; read -r w c <<< "$3"; read -r pw pc <<< "${4:-}"
  local mibs; mibs=$(echo "$total_mib / $w" | bc -l)
  local pct; pct=$(echo "100 * $mibs / $bound" | bc -l)
  local rw="-" rc="-"
  if [[ -n "$pw" ]]; then rw=$(echo "$pw / $w" | bc -l | xargs printf '%.2fx'); rc=$(echo "$pc / $c" | bc -l | xargs printf '%.2fx'); fi
  printf '| %s | %s | %.2f | %.0f | %.0f%% | %.2f | %.0f | %s | %s |\n' "$1" "$2" "$w" "$mibs" "$pct" "$c" "$(echo "$total_mib / $c" | bc -l)" "$rw" "$rc" | tee -a "$out/summary.md"
}

peer_sign=""; peer_verify=""
if [[ $smoke == 0 ]] && "$python" -c 'import model_signing' 2> /dev/null; then
  runs=2
  peer_sign=$(best "$python" -m model_signing sign key "$work" --private_key "$keys/ec.key" --signature "$out/peer.sig")
  peer_verify=$(best "$python" -m model_signing verify key "$work" --signature "$out/peer.sig" --public_key "$keys/ec.key.pub")
  runs=3
  row sign "model_signing $("$python" -c 'import model_signing; print(model_signing.__version__)') (files)" "$peer_sign" ""
  row verify "model_signing (files)" "$peer_verify" ""
elif [[ $smoke == 0 ]]; then
  echo "model_signing not importable by $python: no peer in this run" | tee -a "$out/summary.md" >&2
fi
row sign "aigis (files)" "$(best "$aigis" sign key "$work" --private-key "$keys/ec.key" --signature "$out/aigis.sig")" "$peer_sign"
row verify "aigis (files)" "$(best "$aigis" verify key "$work" --signature "$out/aigis.sig" --public-key "$keys/ec.key.pub")" "$peer_verify"
shard=$(( smoke == 1 ? 1048576 : 268435456 ))
row sign "aigis (shards of $((shard / 1048576)) MiB)" "$(best "$aigis" sign key "$work" --private-key "$keys/ec.key" --signature "$out/aigis-shards.sig" --method shards --shard-size "$shard")" ""
row verify "aigis (shards of $((shard / 1048576)) MiB)" "$(best "$aigis" verify key "$work" --signature "$out/aigis-shards.sig" --public-key "$keys/ec.key.pub")" ""
# Cross-check in the same run: each tool verifies the other's signature.
"$aigis" verify key "$work" --signature "$out/aigis.sig" --public-key "$keys/ec.key.pub" > /dev/null
if [[ -n "$peer_sign" ]]; then
  "$aigis" verify key "$work" --signature "$out/peer.sig" --public-key "$keys/ec.key.pub" > /dev/null
  "$python" -m model_signing verify key "$work" --signature "$out/aigis.sig" --public_key "$keys/ec.key.pub" > /dev/null
fi
echo "raw results: $out" >&2
