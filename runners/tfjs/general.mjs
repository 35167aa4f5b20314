// The general convolution, pooling and transposed convolution of the conv-conformance suite
// (spec/general.py, docs/adapters.md "Beyond the chapter") in TensorFlow.js ops, for runner.mjs.
//
// runner.mjs imports this module after it has imported TensorFlow.js (and sent the console to stderr),
// and hands it `tf` and its array helpers: `generalVerbs(tf, helpers)` returns the verbs' handlers,
// the `conventions` words of the handshake and the subnormal probe.  TF.js is NHWC with HWIO filters:
// the spec's NCHW / OIHW arrays are transposed in and out with tf.transpose; a channels-last case
// (layout "nhwc") comes in TF.js's own layout already.

import { makeGeometry } from './geometry.mjs';

export function generalVerbs(tf, { InvalidArgument, NotImplemented, readArray, writeArray }) {
  const { convGeometry, poolGeometry, transposeGeometry } = makeGeometry(InvalidArgument);

  // -- TF.js ops ---------------------------------------------------------------------------------

  const NCHW_TO_NHWC = [0, 2, 3, 1];
  const NHWC_TO_NCHW = [0, 3, 1, 2];

  /** An HWIO (or depthwise HWCM) kernel with rate - 1 zeros between its taps: a dilation TF.js cannot
   * differentiate (conv2d's and depthwiseConv2d's gradients refuse dilations > 1), or does not take
   * (conv2dTranspose has no dilations), as the same products and sums. */
  function dilateKernel(k, rates) {
    for (const a of [0, 1]) {
      const r = rates[a];
      if (r === 1) continue;
      const taps = k.shape[a];
      const spread = tf.stack([k, ...Array(r - 1).fill(tf.zerosLike(k))], a + 1);
      const shape = k.shape.slice();
      shape[a] = taps * r;
      const size = k.shape.slice();
      size[a] = r * (taps - 1) + 1;
      k = tf.slice(tf.reshape(spread, shape), [0, 0, 0, 0], size);
    }
    return k;
  }

  /** x (NHWC) padded on H and W in a padding mode: tf.mirrorPad, or slices of x put together. */
  function padMode(x, [[t, b], [l, r]], mode) {
    if (mode === 'reflect' || mode === 'symmetric') return tf.mirrorPad(x, [[0, 0], [t, b], [l, r], [0, 0]], mode);
    for (const [axis, lo, hi] of [[1, t, b], [2, l, r]]) {
      const n = x.shape[axis];
      const part = (start, size) => {
        const begin = [0, 0, 0, 0];
        const sizes = [-1, -1, -1, -1];
        begin[axis] = start;
        sizes[axis] = size;
        return tf.slice(x, begin, sizes);
      };
      const times = (m) => [1, 1, 1, 1].map((one, i) => (i === axis ? m : one));
      const before = mode === 'replicate' ? tf.tile(part(0, 1), times(lo)) : part(n - lo, lo);
      const after = mode === 'replicate' ? tf.tile(part(n - 1, 1), times(hi)) : part(0, hi);
      x = tf.concat([lo ? [before] : [], [x], hi ? [after] : []].flat(), axis);
    }
    return x;
  }

  /** conv_general in TF.js ops; `grad`: the forward that tf.grads can differentiate. */
  function convGeneral(X, K, params, grad) {
    const { stride, dilation, padding, padding_mode: mode, groups } = params;
    const { pads: p } = convGeometry(X.shape, K.shape, params);
    const nhwc = params.layout === 'nhwc';
    let x = nhwc ? X : tf.transpose(X, NCHW_TO_NHWC);
    let k = nhwc ? K : tf.transpose(K, [2, 3, 1, 0]);  // OIHW -> HWIO
    const cin = x.shape[3];
    let rates = dilation;
    if (grad && rates.some((d) => d > 1)) [k, rates] = [dilateKernel(k, rates), [1, 1]];
    // TF.js takes strides and dilations together nowhere ("Either strides or dilations must be 1"): the
    // dilated convolution at stride 1, every stride-th output kept (tf.stridedSlice), on explicit pads.
    const both = rates.some((d) => d > 1) && stride.some((s) => s > 1);
    let pad = [[0, 0], ...p, [0, 0]];
    if (mode !== 'zeros') [x, pad] = [padMode(x, p, mode), 'valid'];
    else if ((padding === 'valid' || padding === 'same') && !both) pad = padding;
    const steps = both ? [1, 1] : stride;
    let y;
    if (groups > 1 && groups === cin) {  // depthwise: (kh, kw, 1, C_in * m) -> (kh, kw, C_in, m), channel c*m + j
      const [kh, kw, , cout] = k.shape;
      y = tf.depthwiseConv2d(x, tf.reshape(k, [kh, kw, cin, cout / cin]), steps, pad, 'NHWC', rates);
    } else if (groups > 1) {  // TF.js has no groups: the channels split, each group convolved, concatenated
      const ks = tf.split(k, groups, 3);
      y = tf.concat(tf.split(x, groups, 3).map((xg, g) => tf.conv2d(xg, ks[g], steps, pad, 'NHWC', rates)), 3);
    } else {
      y = tf.conv2d(x, k, steps, pad, 'NHWC', rates);
    }
    if (both) y = tf.stridedSlice(y, [0, 0, 0, 0], y.shape, [1, ...stride, 1]);
    return nhwc ? y : tf.transpose(y, NHWC_TO_NCHW);
  }

  function convParams(args) {
    const { stride, dilation, padding, padding_mode: mode, groups, layout } = args;
    return { stride, dilation, padding, padding_mode: mode, groups, layout: layout === undefined ? 'nchw' : layout };
  }

  function pool2d(X, params) {
    const { kind, window, stride, padding, ceil_mode: ceil, count_include_pad: include } = params;
    const { pads: p, shape } = poolGeometry(X.shape, params);
    let x = tf.transpose(X, NCHW_TO_NHWC);
    const padded = p.some(([lo, hi]) => lo || hi);
    // TF.js pools never pick a padded cell, and its average divides by the window's input cells; with a
    // rounding mode it takes explicit pads only.
    let pad = (padding === 'valid' || padding === 'same') && !ceil ? padding : [[0, 0], ...p, [0, 0]];
    if (kind === 'avg' && include && padded) {  // the padded cells counted: zeros padded in, then 'valid'
      x = tf.pad(x, [[0, 0], ...p, [0, 0]]);
      pad = [[0, 0], [0, 0], [0, 0], [0, 0]];
    }
    const pool = kind === 'max' ? tf.maxPool : tf.avgPool;
    let y = pool(x, window, stride, pad, ceil ? 'ceil' : undefined);
    // dimRoundingMode 'ceil' keeps a last window that starts past the input and its leading pad: cut off.
    y = tf.slice(y, [0, 0, 0, 0], [-1, shape[2], shape[3], -1]);
    return tf.transpose(y, NHWC_TO_NCHW);
  }

  function convTranspose(X, K, params) {
    const { stride, dilation, padding, output_padding: op } = params;
    const { crops } = transposeGeometry(X.shape, K.shape, params);
    const x = tf.transpose(X, NCHW_TO_NHWC);
    let k = tf.transpose(K, [2, 3, 1, 0]);  // (C_in, C_out, kh, kw) -> (kh, kw, C_out, C_in)
    if (dilation.some((d) => d > 1)) k = dilateKernel(k, dilation);
    const [nb, h, w] = x.shape;
    const cout = k.shape[2];
    if (padding === 'same') {
      return tf.transpose(tf.conv2dTranspose(x, k, [nb, h * stride[0], w * stride[1], cout], stride, 'same'),
        NHWC_TO_NCHW);
    }
    // The crop is the explicit pad of the convolution it transposes, and outputShape carries output_padding;
    // TF.js checks that this convolution maps the output back onto x, which fails for output_padding >= stride
    // (possible under a dilation): then the crop at the end is taken from the output padding first, and the
    // rest of the output padding is zeros padded at the end (the full result has no cells there).
    const native = op.every((o, a) => o < stride[a]);
    const ends = [0, 1].map((a) => (native ? crops[a][1] : Math.max(crops[a][1] - op[a], 0)));
    const extra = [0, 1].map((a) => (native ? 0 : Math.max(op[a] - crops[a][1], 0)));
    const sizes = [h, w].map((n, a) => (n - 1) * stride[a] + k.shape[a] + (native ? op[a] : 0) - crops[a][0] - ends[a]);
    let y = tf.conv2dTranspose(x, k, [nb, ...sizes, cout], stride,
      [[0, 0], [crops[0][0], ends[0]], [crops[1][0], ends[1]], [0, 0]]);
    if (!native) y = tf.pad(y, [[0, 0], [0, extra[0]], [0, extra[1]], [0, 0]]);
    return tf.transpose(y, NHWC_TO_NCHW);
  }

  /** Whether TF.js flushes float32 subnormals (asked of the CPU backend once: an input, and a product). */
  function flushesSubnormals() {
    const tiny = 2 ** -140;
    return tf.tidy(() => {
      const kept = tf.conv2d(tf.tensor4d([tiny], [1, 1, 1, 1]), tf.tensor4d([1], [1, 1, 1, 1]), 1, 'valid');
      const product = tf.mul(tf.scalar(2 ** -70), tf.scalar(2 ** -70));
      return kept.dataSync()[0] !== tiny || product.dataSync()[0] !== tiny;
    });
  }

  const handlers = {
    conv_general(args) {
      return writeArray(convGeneral(readArray(args.X, 'X', 4), readArray(args.K, 'K', 4), convParams(args), false));
    },

    conv_general_vjp(args) {
      const params = convParams(args);
      const [x, k, dy] = [readArray(args.X, 'X', 4), readArray(args.K, 'K', 4), readArray(args.dY, 'dY', 4)];
      convGeometry(x.shape, k.shape, params);
      const [dx, dk] = tf.grads((a, b) => convGeneral(a, b, params, true))([x, k], dy);
      return [writeArray(dx), writeArray(dk)];
    },

    conv_general_backprop() {
      throw new NotImplemented('TensorFlow.js exports no explicit conv2d gradient ops: its conv2DBackpropInput and '
        + 'conv2DBackpropFilter are internal (tf.conv2dTranspose is the input gradient, the filter gradient has no '
        + 'public op), so this verb is left out of the manifest');
    },

    pool2d(args) {
      const { kind, window, stride, padding, ceil_mode, count_include_pad } = args;
      return writeArray(pool2d(readArray(args.X, 'X', 4),
        { kind, window, stride, padding, ceil_mode: Boolean(ceil_mode), count_include_pad: Boolean(count_include_pad) }));
    },

    conv_transpose(args) {
      const { stride, dilation, padding, output_padding } = args;
      return writeArray(convTranspose(readArray(args.X, 'X', 4), readArray(args.K, 'K', 4),
        { stride, dilation, padding, output_padding }));
    },
  };

  const flushes = flushesSubnormals();
  const conventions = {
    valid: "native: tf.conv2d(pad='valid')",
    explicit: 'native: pad=[[0, 0], [top, bottom], [left, right], [0, 0]]',
    same: "native: pad='same'",
    same_lower: "emulated: explicit pads with the extra pixel at the beginning (TF.js has no 'same_lower')",
    same_strided: "native: pad='same' with strides",
    stride: 'native: strides=',
    dilation: 'native: dilations=; the gradient through a kernel dilated with zeros (tf.stack, tf.reshape, '
      + 'tf.slice), since the gradients of tf.conv2d and tf.depthwiseConv2d refuse dilations > 1',
    dilation_strided: 'emulated: the dilated convolution at stride 1 on explicit pads, every stride-th output kept '
      + "with tf.stridedSlice (TF.js refuses both: 'Either strides or dilations must be 1'); the gradient through "
      + 'a kernel dilated with zeros, at the stride',
    channels: 'native: NHWC input and HWIO filter, transposed from NCHW / OIHW with tf.transpose',
    groups: 'emulated: tf.split of the channels, a tf.conv2d per group, tf.concat (TF.js has no groups)',
    depthwise: 'native: tf.depthwiseConv2d, filter (kh, kw, C_in, multiplier)',
    reflect: "native: tf.mirrorPad(mode='reflect'); its gradient drops the mirrored cells' share "
      + '(findings/tfjs/mirror_pad_gradient, spec/xfails/tfjs.txt)',
    symmetric: "native: tf.mirrorPad(mode='symmetric'); its gradient drops the mirrored cells' share "
      + '(findings/tfjs/mirror_pad_gradient, spec/xfails/tfjs.txt)',
    replicate: 'emulated: tf.concat of tf.tile-d edge rows and columns (TF.js has no edge mode)',
    circular: 'emulated: tf.concat of wrapped tf.slice-s (TF.js has no wrap mode)',
    gradient: 'native: tf.grads',
    layout_nhwc: "native: TF.js's own layout, NHWC data and HWIO filters (the NCHW cases are transposed in and out)",
    subnormals: flushes ? 'flushed: float32 (measured at start: the CPU backend gave 0 for a subnormal)'
      : 'kept: float32 (measured at start: the pure-JavaScript CPU backend keeps a subnormal input and product)',
    pool_max: 'native: tf.maxPool',
    pool_avg: 'native: tf.avgPool',
    pool_padding: 'native: pad=[[0, 0], [top, bottom], [left, right], [0, 0]] (never picked, never counted)',
    pool_asymmetric: 'native: explicit pads',
    pool_same: "native: pad='same' (an average over the input cells)",
    pool_exclude_pad: 'native: tf.avgPool divides by the input cells of a window',
    pool_include_pad: "emulated: tf.pad with zeros, then tf.avgPool with no pads (TF.js never counts its pads)",
    pool_ceil: "native: dimRoundingMode='ceil' on explicit pads; a last window starting past the input and its "
      + 'leading pad is cut off with tf.slice (torch\'s rule)',
    transpose: 'native: tf.conv2dTranspose, filter (kh, kw, C_out, C_in), outputShape',
    transpose_stride: 'native: strides=',
    transpose_crop: 'native: the crop as explicit pads, output_padding through outputShape (where output_padding '
      + '>= stride, under a dilation: the end crop taken from it, the rest tf.pad-ded zeros)',
    transpose_same: "native: pad='same', outputShape n*s",
    transpose_dilation: 'emulated: a kernel dilated with zeros (tf.conv2dTranspose has no dilations)',
  };
  return { handlers, conventions, flushesSubnormals: flushes ? { cpu: ['float32'] } : {} };
}
