// Time ONNX Runtime's forward on one model (bench/ort.sh drives it).
//
//   node ort_bench.js ORT_DIR MODEL.onnx INPUT.f32 THREADS REPS [LOGITS.f32]
//
// Session: THREADS intra-op threads, 1 inter-op, all graph optimisations,
// sequential execution. INPUT.f32 holds the model's input (raw float32, the
// shape the model declares). Prints "forward_ms" (median of REPS runs after
// 3 warm-up runs) and, with LOGITS.f32 (neuromask's output for the same
// input), "max_abs_diff" and "max_rel_diff" (to the largest |logit|).
'use strict';
const fs = require('fs');
const path = require('path');

function floats(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

async function main() {
  const [ortDir, model, input, threads, reps, logits] = process.argv.slice(2);
  if (!reps) throw new Error('usage: node ort_bench.js ORT_DIR MODEL.onnx INPUT.f32 THREADS REPS [LOGITS.f32]');
  const ort = require(path.resolve(ortDir, 'node_modules', 'onnxruntime-node'));
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const x = floats(input);
  let dims = meta && meta.shape ? meta.shape.map(Number) : null;
  if (!dims || dims.some((d) => !(d > 0))) throw new Error(`${model}: input shape not fixed`);
  if (dims.reduce((a, b) => a * b, 1) !== x.length) throw new Error(`${input}: ${x.length} values for ${dims}`);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, dims) };
  const out = session.outputNames[0];
  const times = [];
  let y = null;
  for (let r = -3; r < Number(reps); r++) {
    const t0 = process.hrtime.bigint();
    const res = await session.run(feeds);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r >= 0) times.push(dt);
    y = res[out].data;
  }
  times.sort((a, b) => a - b);
  console.log(`forward_ms ${times[Math.floor(times.length / 2)].toFixed(3)}`);
  if (logits) {
    const ref = floats(logits);
    if (ref.length !== y.length) throw new Error(`${logits}: ${ref.length} logits, ONNX Runtime gives ${y.length}`);
    let dmax = 0, ymax = 0;
    for (let i = 0; i < y.length; i++) {
      dmax = Math.max(dmax, Math.abs(y[i] - ref[i]));
      ymax = Math.max(ymax, Math.abs(y[i]));
    }
    if (!(dmax >= 0)) dmax = Infinity;   // NaN on either side
    console.log(`max_abs_diff ${dmax.toExponential(2)}\nmax_rel_diff ${(dmax / ymax).toExponential(2)}`);
  }
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
