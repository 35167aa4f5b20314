// TensorFlow.js: the gradient of tf.mirrorPad ignores the mirrored cells.
//
// tf.mirrorPad copies input cells into the padding (reflect: [1, 2, 3] -> 2 | 1 2 3 | 2), so the gradient of
// a padded cell belongs to the input cell it was copied from.  tfjs-core's MirrorPad gradient
// (gradients/MirrorPad_grad: "slice(dy, begin, x.shape)") keeps only the centre of dy and drops the
// padding's share: every conv with reflect or symmetric padding gets a wrong input gradient.
//
//   node findings/tfjs/mirror_pad_gradient.mjs      (after: npm ci --prefix runners/tfjs)
// Exits 1 while the deviation is present, 0 once it is gone.  Imports TensorFlow.js only, from
// runners/tfjs/node_modules (the runner's pinned install), its pure-JavaScript CPU backend.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../runners/tfjs/package.json', import.meta.url));
const stdout = console.log;
console.log = console.warn = () => {};  // tfjs's Node banner
const tf = await import(require.resolve('@tensorflow/tfjs'));
await tf.setBackend('cpu');
console.log = stdout;

const x = [1, 2, 3];
const dy = [10, 20, 30, 40, 50];  // one weight per padded cell
// d/dx of sum(mirrorPad(x) * dy), by hand from the padded layout:
//   reflect   [x1, x0, x1, x2, x1]: dx = [20, 10 + 30 + 50, 40] = [20, 90, 40]
//   symmetric [x0, x0, x1, x2, x2]: dx = [10 + 20, 30, 40 + 50] = [30, 30, 90]
const expected = { reflect: [20, 90, 40], symmetric: [30, 30, 90] };
let wrong = false;
for (const mode of ['reflect', 'symmetric']) {
  const padded = tf.mirrorPad(tf.tensor1d(x), [[1, 1]], mode);
  const dx = tf.grad((v) => tf.sum(tf.mul(tf.mirrorPad(v, [[1, 1]], mode), tf.tensor1d(dy))))(tf.tensor1d(x));
  const got = Array.from(dx.dataSync());
  const same = got.every((v, i) => v === expected[mode][i]);
  wrong ||= !same;
  console.log(`mode=${mode}: x=[${x}], padded=[${Array.from(padded.dataSync())}], dy=[${dy}]`);
  console.log(`  expected dx=[${expected[mode]}]  observed dx=[${got}]  ${same ? 'ok' : 'WRONG'}`);
}
console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}: ` +
  (wrong ? 'the deviation is present' : 'the deviation is gone'));
process.exit(wrong ? 1 : 0);
