// The spec's geometry (spec/general.py: check, pool_check, transpose_check), ported for the TF.js runner:
// the pads and output shapes of the general convolution, pooling and transposed convolution, or an
// InvalidArgument (the "invalid" error kind) by the spec's rules, before TF.js is asked anything (TF.js
// itself fails on some of these only by accident: a kernel larger than the input is "Invalid typed array
// length: -6"), and the explicit pads that emulate 'same_lower' and 'same' under a dilated stride.

const MODES = ['zeros', 'reflect', 'replicate', 'symmetric', 'circular'];
const WORDS = ['valid', 'same', 'same_lower'];

export function makeGeometry(InvalidArgument) {
  const bad = (text) => { throw new InvalidArgument(text); };

  function pair(v, name, min) {
    if (!Array.isArray(v) || v.length !== 2 || !v.every(Number.isInteger)) bad(`${name} is ${JSON.stringify(v)}`);
    if (min !== undefined && Math.min(...v) < min) bad(`${name} ${JSON.stringify(v)} must be at least ${min}`);
    return v;
  }

  /** [[top, bottom], [left, right]] of a padding word (TensorFlow's 'same', or the extra pixel first) or pairs. */
  function pads(padding, n, k, stride, dilation) {
    if (typeof padding === 'string') {
      if (!WORDS.includes(padding)) bad(`unknown padding ${JSON.stringify(padding)}`);
      return n.map((ni, a) => {
        if (padding === 'valid') return [0, 0];
        const out = Math.ceil(ni / stride[a]);
        const total = Math.max((out - 1) * stride[a] + dilation[a] * (k[a] - 1) + 1 - ni, 0);
        const begin = padding === 'same' ? Math.floor(total / 2) : total - Math.floor(total / 2);
        return [begin, total - begin];
      });
    }
    if (!Array.isArray(padding) || padding.length !== 2) bad(`padding needs (top, bottom), (left, right)`);
    return padding.map((p, a) => pair(p, `padding ${a}`));
  }

  /** The pads and the logical (NCHW) output shape of conv_general, or "invalid" by the spec's rules. */
  function convGeometry(xShape, kShape, { stride, dilation, padding, padding_mode: mode, groups, layout }) {
    if (xShape.length !== 4 || kShape.length !== 4) bad('X and K must be 4-D');
    const nhwc = layout === 'nhwc';
    if (!nhwc && layout !== 'nchw') bad(`unknown layout ${JSON.stringify(layout)}`);
    const [nb, h, w, cin] = nhwc ? xShape : [xShape[0], xShape[2], xShape[3], xShape[1]];
    const [kh, kw, cg, cout] = nhwc ? kShape : [kShape[2], kShape[3], kShape[1], kShape[0]];
    if (!MODES.includes(mode)) bad(`unknown padding mode ${JSON.stringify(mode)}`);
    pair(stride, 'stride', 1);
    pair(dilation, 'dilation', 1);
    if (!Number.isInteger(groups) || groups < 1 || cin % groups || cout % groups) {
      bad(`groups=${groups} must divide both channel counts (C_in=${cin}, C_out=${cout})`);
    }
    if (cg !== cin / groups) bad(`K has ${cg} input channels per group, but C_in / groups = ${cin / groups}`);
    const p = pads(padding, [h, w], [kh, kw], stride, dilation);
    const out = p.map(([lo, hi], a) => {
      const n = [h, w][a];
      if (lo < 0 || hi < 0) bad(`negative padding [${lo}, ${hi}]`);
      if (mode === 'reflect' && Math.max(lo, hi) >= n) bad(`reflect padding [${lo}, ${hi}] must be smaller than ${n}`);
      if ((mode === 'symmetric' || mode === 'circular') && Math.max(lo, hi) > n) {
        bad(`${mode} padding [${lo}, ${hi}] must not exceed ${n}`);
      }
      const span = n + lo + hi - dilation[a] * ([kh, kw][a] - 1);
      if (span < 1) bad(`the dilated kernel is larger than the padded input (${n + lo + hi})`);
      return Math.floor((span - 1) / stride[a]) + 1;
    });
    return { pads: p, shape: [nb, cout, ...out] };
  }

  function poolGeometry(xShape, { kind, window, stride, padding, ceil_mode: ceil }) {
    if (xShape.length !== 4) bad('X must be (N, C, H, W)');
    if (kind !== 'max' && kind !== 'avg') bad(`unknown pooling ${JSON.stringify(kind)}`);
    pair(window, 'window', 1);
    pair(stride, 'stride', 1);
    const p = pads(padding, xShape.slice(2), window, stride, [1, 1]);
    const out = p.map(([lo, hi], a) => {
      const [n, k, s] = [xShape[2 + a], window[a], stride[a]];
      if (lo < 0 || hi < 0) bad(`negative padding [${lo}, ${hi}]`);
      const span = n + lo + hi - k;
      if (span < 0) bad(`the ${k}-wide window is larger than the padded input (${n + lo + hi})`);
      let size = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
      if (ceil && (size - 1) * s >= n + lo) size -= 1;  // no window starts past the input and its leading pad
      for (let i = 0; i < size; i++) {
        if (Math.min(i * s + k, n + lo) <= Math.max(i * s, lo)) bad(`pooling window ${i} holds no input cell`);
      }
      return size;
    });
    return { pads: p, shape: [xShape[0], xShape[1], ...out] };
  }

  function transposeGeometry(xShape, kShape, { stride, dilation, padding, output_padding: op }) {
    if (xShape.length !== 4 || kShape.length !== 4) bad('X must be (N, C_in, H, W) and K (C_in, C_out, kh, kw)');
    if (xShape[1] !== kShape[0]) bad(`K has ${kShape[0]} input channels, X has ${xShape[1]}`);
    pair(stride, 'stride', 1);
    pair(dilation, 'dilation', 1);
    pair(op, 'output_padding');
    const crops = [0, 1].map((a) => {
      const [n, k, s, d, o] = [xShape[2 + a], kShape[2 + a], stride[a], dilation[a], op[a]];
      if (o < 0 || (o >= s && o >= d)) bad(`output_padding ${o} must be smaller than the stride ${s} or the dilation ${d}`);
      const full = (n - 1) * s + d * (k - 1) + 1;
      let lo;
      let hi;
      if (padding === 'same') {
        if (o) bad("output_padding with 'same': the output is n*s");
        const total = Math.max(full - n * s, 0);
        [lo, hi] = [Math.floor(total / 2), total - Math.floor(total / 2)];
      } else {
        if (!Array.isArray(padding) || padding.length !== 2) bad(`padding is ${JSON.stringify(padding)}`);
        [lo, hi] = pair(padding[a], `padding ${a}`);
      }
      if (lo < 0 || hi < 0) bad(`negative padding [${lo}, ${hi}]`);
      if (full + o - lo - hi < 1) bad(`padding [${lo}, ${hi}] crops away the whole result`);
      return [lo, hi];
    });
    return { crops };
  }

  return { convGeometry, poolGeometry, transposeGeometry };
}
