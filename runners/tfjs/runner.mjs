// The TensorFlow.js runner of the conv-conformance suite (docs/runners.md, protocol version 1).
//
// Newline-delimited JSON: the handshake first, then one response line per request line on stdin;
// exits 0 when stdin ends.  Every verb computes in TensorFlow.js's own ops on its pure-JavaScript
// CPU backend ('cpu'), in float32 (TensorFlow.js has no float64).  Nothing but protocol lines ever
// reaches stdout: the console is sent to stderr before TensorFlow.js is imported.

import { createInterface } from 'node:readline';
import { format } from 'node:util';

// -- stdout belongs to the protocol ------------------------------------------------------------
// tfjs greets Node users through console.log/warn ("Hi, looks like you are running TensorFlow.js in
// Node.js ...") and warns through console.warn: all of it goes to stderr.  The static imports above
// are Node built-ins; tfjs itself is imported dynamically below, after this redirection.
const toStderr = (...args) => { process.stderr.write(format(...args) + '\n'); };
console.log = toStderr;
console.info = toStderr;
console.warn = toStderr;
console.debug = toStderr;
console.trace = toStderr;

const writeOut = process.stdout.write.bind(process.stdout);
function send(line) {
  writeOut(line + '\n');
}

const tf = await import('@tensorflow/tfjs');
await tf.setBackend('cpu');
await tf.ready();
if (tf.getBackend() !== 'cpu') {
  throw new Error(`tf.setBackend('cpu') did not take: the backend is ${tf.getBackend()}`);
}

// conv_general_backprop is left out: TF.js has no public conv2d gradient ops (general.mjs says why).
const VERBS = ['corr2d', 'conv2d', 'corr2d_matmul', 'conv2d_layer', 'layer_parameters', 'layer_step',
  'receptive_field', 'learn_kernel', 'conv_general', 'conv_general_vjp', 'pool2d', 'conv_transpose'];
const DTYPE = 'float32';

// -> error kind "invalid" (a ValueError on the suite's side)
class InvalidArgument extends Error {
  get name() { return 'ValueError'; }
}
// -> error kind "not_implemented"
class NotImplemented extends Error {
  get name() { return 'NotImplementedError'; }
}

// -- arrays across the boundary --------------------------------------------------------------

function toNumber(v) {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new Error(`not a number: ${JSON.stringify(v)}`);
}

/** An array object of the protocol as a float32 tensor (exact: every value sent is a float32). */
function readArray(obj, name, rank) {
  if (obj === null || typeof obj !== 'object' || !Array.isArray(obj.shape) || !Array.isArray(obj.data)) {
    throw new Error(`argument ${name} is not an array object {dtype, shape, data}`);
  }
  if (obj.dtype !== DTYPE) {
    throw new Error(`argument ${name} is ${obj.dtype}: TensorFlow.js has no ${obj.dtype} ` +
      `(this runner declares float32 only)`);
  }
  if (rank !== undefined && obj.shape.length !== rank) {
    throw new InvalidArgument(`argument ${name} has shape [${obj.shape}], expected rank ${rank}`);
  }
  const size = obj.shape.reduce((a, b) => a * b, 1);
  if (obj.data.length !== size) {
    throw new Error(`argument ${name} has ${obj.data.length} values for shape [${obj.shape}]`);
  }
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = toNumber(obj.data[i]);
  return tf.tensor(values, obj.shape, DTYPE);
}

/** One value as JSON text: String(x) (shortest round-trip), -0 kept as -0.0, non-finite as words. */
function numberText(x) {
  if (Number.isNaN(x)) return '"NaN"';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  if (x === 0 && Object.is(x, -0)) return '-0.0';
  return String(x);
}

/** A tensor as a protocol array object, pre-serialised (Raw) so that -0 keeps its sign. */
class Raw {
  constructor(text) { this.text = text; }
}

function writeArray(t) {
  if (t.dtype !== DTYPE) throw new Error(`a result in ${t.dtype}, not ${DTYPE}`);
  const values = t.dataSync();
  const parts = new Array(values.length);
  for (let i = 0; i < values.length; i++) parts[i] = numberText(values[i]);
  return new Raw(`{"dtype":"${DTYPE}","shape":${JSON.stringify(t.shape)},"data":[${parts.join(',')}]}`);
}

/** JSON text of a result that may hold Raw array objects. */
function serialise(value) {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(serialise).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${serialise(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function readSize(v, name) {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((n) => Number.isInteger(n) && n > 0)) {
    throw new InvalidArgument(`${name} is ${JSON.stringify(v)}, not two positive sizes`);
  }
  return v;
}

function readNumber(v, name) {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidArgument(`${name} is ${JSON.stringify(v)}`);
  return v;
}

// -- the chapter's verbs, in TensorFlow.js ops ------------------------------------------------

/** (nh-kh+1, nw-kw+1), or "invalid" for a kernel larger than the input (backends.base.output_shape). */
function outputShape(X, K) {
  const [nh, nw] = X.shape;
  const [kh, kw] = K.shape;
  if (kh > nh || kw > nw) {
    throw new InvalidArgument(`kernel ${kh}x${kw} is larger than the input ${nh}x${nw}: no valid position`);
  }
  return [nh - kh + 1, nw - kw + 1];
}

/** The book's corr2d: Y[i, j] = reduce_sum(X[i:i+h, j:j+w] * K), position by position, stacked. */
function corr2d(X, K) {
  const [oh, ow] = outputShape(X, K);
  const [h, w] = K.shape;
  const cells = [];
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      cells.push(tf.sum(tf.mul(tf.slice(X, [i, j], [h, w]), K)));
    }
  }
  return tf.reshape(tf.stack(cells), [oh, ow]);
}

/** The built-in op: tf.conv2d on NHWC (1, nh, nw, 1) with an HWIO (kh, kw, 1, 1) filter, 'valid'. */
function conv2d(X, K) {
  const [oh, ow] = outputShape(X, K);
  const [nh, nw] = X.shape;
  const [kh, kw] = K.shape;
  const Y = tf.conv2d(tf.reshape(X, [1, nh, nw, 1]), tf.reshape(K, [kh, kw, 1, 1]), 1, 'valid');
  return tf.reshape(Y, [oh, ow]);
}

/** Exercise 4: im2col from slices of X, (oh*ow, kh*kw), times K as (kh*kw, 1). */
function corr2dMatmul(X, K) {
  const [oh, ow] = outputShape(X, K);
  const [kh, kw] = K.shape;
  const rows = [];
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      rows.push(tf.reshape(tf.slice(X, [i, j], [kh, kw]), [kh * kw]));
    }
  }
  const im2col = tf.stack(rows);  // (oh*ow, kh*kw)
  return tf.reshape(tf.matMul(im2col, tf.reshape(K, [kh * kw, 1])), [oh, ow]);
}

/** The book's Conv2D layer in tfjs-layers: weight (kernel_size) and bias (1,); forward corr(x, weight) + bias. */
class Conv2D extends tf.layers.Layer {
  constructor(config) {
    super({ name: config.name, trainable: true });
    this.kernelSize = config.kernelSize;
    this.corr = config.corr || corr2d;
  }

  build(inputShape) {
    // The book's TF tab: weight from random_normal, bias from zeros.
    this.weight = this.addWeight('weight', this.kernelSize, DTYPE, tf.initializers.randomNormal({}));
    this.bias = this.addWeight('bias', [1], DTYPE, tf.initializers.zeros());
    this.built = true;
  }

  computeOutputShape(inputShape) {
    return [inputShape[0] - this.kernelSize[0] + 1, inputShape[1] - this.kernelSize[1] + 1];
  }

  call(inputs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.add(this.corr(x, this.weight.read()), this.bias.read());
  }

  static get className() {
    return 'Conv2D';
  }
}
tf.serialization.registerClass(Conv2D);

/** A weight's name as the layer registered it: tfjs makes names unique ("weight_3") and may scope them
 * ("conv2_d/weight"); originalName is the name given to addWeight. */
function weightName(w) {
  const strip = (n) => String(n).split('/').pop().replace(/:\d+$/, '');
  if (w.originalName) return strip(w.originalName);
  return strip(w.name).replace(/_\d+$/, '');
}

function disposeLayer(layer) {
  for (const w of layer.weights) {
    try { w.dispose(); } catch (e) { /* already disposed */ }
  }
}

/** The book's Conv2D with K and b loaded (layer.setWeights, in the order the layer registered them). */
function loadedLayer(K, b, corr) {
  const layer = new Conv2D({ kernelSize: K.shape, corr });
  layer.build(null);
  const byName = { weight: K, bias: b };
  layer.setWeights(layer.weights.map((w) => byName[weightName(w)]));
  return layer;
}

function checkBias(b) {
  if (b.shape.length !== 1 || b.shape[0] !== 1) throw new InvalidArgument(`b has shape [${b.shape}], not [1]`);
}

const handlers = {
  corr2d({ X, K }) {
    return writeArray(corr2d(readArray(X, 'X', 2), readArray(K, 'K', 2)));
  },

  conv2d({ X, K }) {
    return writeArray(conv2d(readArray(X, 'X', 2), readArray(K, 'K', 2)));
  },

  corr2d_matmul({ X, K }) {
    return writeArray(corr2dMatmul(readArray(X, 'X', 2), readArray(K, 'K', 2)));
  },

  conv2d_layer({ X, K, b }) {
    const x = readArray(X, 'X', 2);
    const k = readArray(K, 'K', 2);
    const bias = readArray(b, 'b', 1);
    checkBias(bias);
    outputShape(x, k);
    const layer = loadedLayer(k, bias, corr2d);
    try {
      return writeArray(layer.apply(x));
    } finally {
      disposeLayer(layer);
    }
  },

  layer_parameters({ kernel_size: kernelSize, dtype, device }) {
    const size = readSize(kernelSize, 'kernel_size');
    if (dtype !== DTYPE) throw new Error(`TensorFlow.js has no ${dtype} (this runner declares float32 only)`);
    if (device !== 'cpu') throw new Error(`device ${device}: this runner runs on tfjs's 'cpu' backend only`);
    const layer = new Conv2D({ kernelSize: size });
    layer.build(null);
    try {
      const shapes = {};
      for (const w of layer.trainableWeights) shapes[weightName(w)] = w.shape.slice();
      return shapes;
    } finally {
      disposeLayer(layer);
    }
  },

  layer_step({ X, K, b, Y, lr }) {
    const x = readArray(X, 'X', 2);
    const k = readArray(K, 'K', 2);
    const bias = readArray(b, 'b', 1);
    const y = readArray(Y, 'Y', 2);
    checkBias(bias);
    const rate = readNumber(lr, 'lr');
    const [oh, ow] = outputShape(x, k);
    if (y.shape[0] !== oh || y.shape[1] !== ow) {
      throw new InvalidArgument(`Y has shape [${y.shape}], the layer's output [${oh},${ow}]`);
    }
    // The forward through the built-in op (as the shipped adapters do); the optimizer is given the
    // variables of the weights the layer itself enumerates.
    const layer = loadedLayer(k, bias, conv2d);
    const optimizer = tf.train.sgd(rate);
    try {
      const weights = layer.trainableWeights;
      optimizer.minimize(() => tf.sum(tf.square(tf.sub(layer.apply(x), y))), false, weights.map((w) => w.read()));
      const result = {};
      for (const w of weights) result[weightName(w)] = writeArray(w.read());
      return result;
    } finally {
      optimizer.dispose();
      disposeLayer(layer);
    }
  },

  receptive_field({ X, K1, K2 }) {
    const x = readArray(X, 'X', 2);
    const k1 = readArray(K1, 'K1', 2);
    const k2 = readArray(K2, 'K2', 2);
    const total = tf.grad((v) => tf.sum(conv2d(conv2d(v, k1), k2)))(x);
    const corner = tf.grad((v) => tf.reshape(tf.slice(conv2d(v, k1), [0, 0], [1, 1]), []))(x);
    return [writeArray(total), writeArray(corner)];
  },

  learn_kernel({ X, Y, kernel_size: kernelSize, lr, steps, initial, seed }) {
    const x = readArray(X, 'X', 2);
    const y = readArray(Y, 'Y', 2);
    const [kh, kw] = readSize(kernelSize, 'kernel_size');
    const rate = readNumber(lr, 'lr');
    if (!Number.isInteger(steps) || steps < 0) throw new InvalidArgument(`steps is ${JSON.stringify(steps)}`);
    if (initial === null && !Number.isInteger(seed)) throw new InvalidArgument(`seed is ${JSON.stringify(seed)}`);
    const [nh, nw] = x.shape;
    if (kh > nh || kw > nw) {
      throw new InvalidArgument(`kernel ${kh}x${kw} is larger than the input ${nh}x${nw}: no valid position`);
    }
    // The built-in conv layer, NHWC, one filter, no bias; its own initializer, seeded by tfjs's seed.
    const conv = tf.layers.conv2d({
      filters: 1, kernelSize: [kh, kw], strides: 1, padding: 'valid', useBias: false, dtype: DTYPE,
      inputShape: [nh, nw, 1], kernelInitializer: tf.initializers.glorotUniform({ seed }),
    });
    const x4 = tf.reshape(x, [1, nh, nw, 1]);
    const y4 = tf.reshape(y, [1, nh - kh + 1, nw - kw + 1, 1]);
    conv.build(x4.shape);
    try {
      const kernel = conv.trainableWeights[0].read();  // the tf.Variable behind the layer's kernel
      if (initial !== null && initial !== undefined) {
        const start = readArray(initial, 'initial', 2);
        if (start.shape[0] !== kh || start.shape[1] !== kw) {
          throw new InvalidArgument(`initial has shape [${start.shape}], not kernel_size [${kh},${kw}]`);
        }
        kernel.assign(tf.reshape(start, [kh, kw, 1, 1]));
      }
      const first = tf.reshape(kernel, [kh, kw]);  // a copy: reshape of a variable is a new tensor
      const step = tf.scalar(rate, DTYPE);
      const losses = [];
      for (let i = 0; i < steps; i++) {
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.square(tf.sub(conv.apply(x4), y4))), [kernel]);
        losses.push(value);  // before update i
        kernel.assign(tf.sub(kernel, tf.mul(step, grads[kernel.name])));
        tf.dispose(grads);
      }
      const lossTensor = steps > 0 ? tf.stack(losses) : tf.zeros([0], DTYPE);
      return {
        initial: writeArray(first),
        losses: writeArray(lossTensor),
        kernel: writeArray(tf.reshape(kernel, [kh, kw])),
      };
    } finally {
      disposeLayer(conv);
    }
  },
};

// The general convolution, pooling and transposed convolution (spec/general.py): general.mjs, given tf.
const { generalVerbs } = await import('./general.mjs');
const general = generalVerbs(tf, { InvalidArgument, NotImplemented, readArray, writeArray });
Object.assign(handlers, general.handlers);

// -- the protocol loop -------------------------------------------------------------------------

function respond(request) {
  const { id, verb, args } = request;
  const handler = Object.prototype.hasOwnProperty.call(handlers, verb) ? handlers[verb] : null;
  if (handler === null) {
    return { id, error: { kind: 'not_implemented', message: `tfjs runner: ${verb} is not implemented` } };
  }
  // Every tensor made while answering is disposed at the end of the scope (the layers' variables
  // are disposed by the handlers themselves).
  tf.engine().startScope();
  try {
    return { id, result: handler(args || {}) };
  } catch (exc) {
    const kind = exc instanceof InvalidArgument ? 'invalid' : exc instanceof NotImplemented ? 'not_implemented'
      : 'failed';
    const message = exc && exc.message !== undefined ? `${exc.name}: ${exc.message}` : String(exc);
    if (kind === 'failed') process.stderr.write(`tfjs runner: ${verb} (request ${id}) failed: ${exc && exc.stack}\n`);
    return { id, error: { kind, message } };
  } finally {
    tf.engine().endScope();
  }
}

send(JSON.stringify({
  protocol: 'conv-conformance-runner',
  version: 1,
  contract: 2,  // the adapter contract's version (backends/base.py CONTRACTS) this runner was written for
  name: 'tfjs',
  framework: 'TensorFlow.js',
  framework_version: tf.version.tfjs,
  runtime: `node ${process.version}`,
  verbs: VERBS,
  dtypes: { cpu: [DTYPE] },
  train_dtypes: [DTYPE],
  conventions: general.conventions,
  flushes_subnormals: general.flushesSubnormals,
}));

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
for await (const line of lines) {
  if (!line.trim()) continue;
  let request;
  try {
    request = JSON.parse(line);
  } catch (exc) {
    process.stderr.write(`tfjs runner: a line that is not JSON: ${line.slice(0, 200)}\n`);
    send(JSON.stringify({ id: -1, error: { kind: 'failed', message: `not JSON: ${exc.message}` } }));
    continue;
  }
  const started = process.env.CONV_CONFORMANCE_RUNNER_TIMING ? process.hrtime.bigint() : null;
  const response = respond(request);
  send(serialise(response));
  if (started !== null) {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stderr.write(`tfjs runner: ${request.verb} ${ms.toFixed(2)} ms, ${tf.memory().numTensors} tensors\n`);
  }
}
process.exit(0);
