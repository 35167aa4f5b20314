/*
 * The JVM runner of conv-conformance: the book's loops (d2l 7.2, "Convolutions for Images") in plain
 * Java 17, the JDK only, speaking the runner protocol of docs/runners.md on stdin/stdout.
 *
 *   javac -d runners/jvm/build runners/jvm/Runner.java
 *   java -cp runners/jvm/build Runner                  (from the suite's root)
 *   pytest --backend='runner:java,-cp,runners/jvm/build,Runner'
 *
 * It is the Java twin of backends/numpy.py: no framework, so every verb is a loop written out, and
 * every gradient is the hand-derived one (the backward pass of a cross-correlation is a
 * cross-correlation with the residual, or a scatter of the kernel back onto the input window).
 *
 * Arithmetic.  A float64 request computes in double, a float32 request in float: every product and
 * every sum is a Java float operation ((float) a * (float) b), exactly what a float32 framework does
 * element by element.  Values travel in double[] (a float widens to a double exactly), and are written
 * back with Double.toString, which round-trips the double, hence the float, exactly.  Sums run
 * left to right from 0, in the order of the book's loops.
 *
 * Where a DJL (d2l-java) runner would call the framework instead of a loop written out here:
 *
 *   corr2d          for i, j:  Y.set(new NDIndex(i + "," + j),
 *                                X.get(new NDIndex(i + ":" + (i + h) + "," + j + ":" + (j + w))).mul(K).sum());
 *                    (d2l-java's corr2d, in NDArray ops; this file's corr2d() is that loop on double[])
 *   conv2d          Convolution.conv2d(X.reshape(1, 1, nh, nw), K.reshape(1, 1, kh, kw), null, ...)
 *                    (NCHW / OIHW, 'VALID', stride 1): the built-in op.  This runner has no framework
 *                    op, so it answers conv2d with "not_implemented" and leaves it out of its verbs.
 *   corr2d_matmul   the im2col matrix as an NDArray, then im2col.matMul(K.reshape(kh * kw)).reshape(oh, ow)
 *   conv2d_layer    Conv2d.builder().setKernelShape(new Shape(kh, kw)).setFilters(1).optBias(true).build(),
 *                    its "weight" and "bias" Parameters set from K and b, then block.forward(...)
 *   layer_parameters  block.getParameters() after initialize(...): the names and shapes DJL enumerates
 *   layer_step      try (GradientCollector gc = Engine.getInstance().newGradientCollector())
 *                    { gc.backward(loss) }, then a Trainer with Optimizer.sgd() (no momentum, no weight
 *                    decay) and trainer.step()
 *   receptive_field X.setRequiresGradient(true); Y = corr2d(X, K1); Z = corr2d(Y, K2); in a
 *                    GradientCollector, gc.backward(Z.sum()) then X.getGradient(), and again for
 *                    gc.backward(Y.get(0, 0)) (a fresh collector: DJL accumulates otherwise)
 *   learn_kernel    the Conv2d block without bias, GradientCollector, and W.subi(W.getGradient().mul(lr)).
 *                    Beware: DJL's Loss.l2Loss() is HALF THE MEAN of the squared errors,
 *                    (1/2N) sum (Yhat - Y)^2, not the sum that the book's Python tabs minimise; the
 *                    loop here differentiates the sum, sum (Yhat - Y)^2 (the suite names the other
 *                    convention: "half the mean (DJL's L2Loss)").
 *
 * Protocol: the first line on stdout is the handshake; then one response line per request line.
 * Nothing else is ever written to stdout (System.out is pointed at stderr, so that a stray print
 * cannot break the protocol); logs go to stderr.  At the end of stdin the runner exits with status 0.
 */

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

public final class Runner {

    static final String[] VERBS = {"corr2d", "corr2d_matmul", "conv2d_layer", "layer_parameters", "layer_step",
                                   "receptive_field", "learn_kernel"};
    static final List<String> DTYPES = List.of("float32", "float64");

    // ------------------------------------------------------------------------------------------------
    // main loop
    // ------------------------------------------------------------------------------------------------

    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        System.setOut(System.err);  // stdout belongs to the protocol alone
        send(out, handshake());
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        boolean timing = System.getenv("CONV_CONFORMANCE_JVM_TIMING") != null;
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            long t0 = System.nanoTime();
            Map<String, Object> response = handle(line);
            Object verb = response.remove("_verb");
            send(out, response);
            if (timing) {
                System.err.printf("jvm runner: %s in %.3f ms%n", verb, (System.nanoTime() - t0) / 1e6);
            }
        }
        out.flush();
        System.exit(0);
    }

    static void send(PrintStream out, Map<String, Object> message) {
        StringBuilder sb = new StringBuilder(256);
        Json.write(message, sb);
        sb.append('\n');
        out.print(sb);
        out.flush();
    }

    static Map<String, Object> handshake() {
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("protocol", "conv-conformance-runner");
        h.put("version", 1);
        h.put("name", "jvm");
        h.put("framework", "Java (JDK, the book's loops)");
        h.put("framework_version", System.getProperty("java.version"));
        h.put("runtime", "java " + System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        h.put("verbs", List.of(VERBS));
        h.put("dtypes", Map.of("cpu", DTYPES));
        h.put("train_dtypes", DTYPES);
        return h;
    }

    /** One request line in, one response object out; never throws. */
    static Map<String, Object> handle(String line) {
        Map<String, Object> response = new LinkedHashMap<>();
        Object id = null;
        String verb = "?";
        try {
            Object parsed = Json.parse(line);
            if (!(parsed instanceof Map)) {
                throw new IllegalArgumentException("a request must be a JSON object");
            }
            Map<?, ?> request = (Map<?, ?>) parsed;
            id = request.get("id");
            response.put("id", id);
            verb = String.valueOf(request.get("verb"));
            Object a = request.get("args");
            Map<?, ?> args = a instanceof Map ? (Map<?, ?>) a : Map.of();
            response.put("result", dispatch(verb, new Args(args)));
        } catch (Invalid e) {
            response.put("id", id);
            response.put("error", error("invalid", e.getMessage()));
        } catch (NotImplemented e) {
            response.put("id", id);
            response.put("error", error("not_implemented", e.getMessage()));
        } catch (Throwable e) {  // StackOverflowError, OutOfMemoryError and the like: still one answer
            System.err.println("jvm runner: " + verb + " failed:");
            e.printStackTrace(System.err);
            response.put("id", id);
            response.put("error", error("failed", e.getClass().getName() + ": " + e.getMessage()));
        }
        response.put("_verb", verb);  // for the timing log only: taken out before the response is sent
        return response;
    }

    static Map<String, Object> error(String kind, String message) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("kind", kind);
        e.put("message", message == null ? "" : message);
        return e;
    }

    static Object dispatch(String verb, Args args) {
        switch (verb) {
            case "corr2d": {
                Tensor X = args.array("X"), K = args.array("K");
                Arith ar = args.arith(X, K);
                return corr2d(ar, X, K);
            }
            case "corr2d_matmul": {
                Tensor X = args.array("X"), K = args.array("K");
                return corr2dMatmul(args.arith(X, K), X, K);
            }
            case "conv2d_layer": {
                Tensor X = args.array("X"), K = args.array("K"), b = args.array("b");
                Arith ar = args.arith(X, K, b);
                Conv2D layer = Conv2D.loaded(ar, K, b);
                return layer.forward(X);
            }
            case "layer_parameters": {
                int[] ks = args.kernelSize("kernel_size");
                Arith ar = Arith.of(args.string("dtype"));
                String device = args.string("device");
                if (!"cpu".equals(device)) {
                    throw new Invalid("device " + device + " is not supported by the jvm runner: cpu only");
                }
                Map<String, Object> shapes = new LinkedHashMap<>();
                for (Map.Entry<String, Tensor> p : new Conv2D(ar, ks[0], ks[1]).parameters().entrySet()) {
                    shapes.put(p.getKey(), p.getValue().shape.clone());
                }
                return shapes;
            }
            case "layer_step": {
                Tensor X = args.array("X"), K = args.array("K"), b = args.array("b"), Y = args.array("Y");
                Arith ar = args.arith(X, K, b, Y);
                return layerStep(ar, X, K, b, Y, args.number("lr"));
            }
            case "receptive_field": {
                Tensor X = args.array("X"), K1 = args.array("K1"), K2 = args.array("K2");
                return receptiveField(args.arith(X, K1, K2), X, K1, K2);
            }
            case "learn_kernel": {
                Tensor X = args.array("X"), Y = args.array("Y");
                Arith ar = args.arith(X, Y);
                Tensor initial = args.optionalArray("initial");
                if (initial != null) {
                    args.arith(X, Y, initial);
                }
                return learnKernel(ar, X, Y, args.kernelSize("kernel_size"), args.number("lr"),
                                   args.integer("steps"), initial, args.optionalLong("seed"));
            }
            case "conv2d":
                throw new NotImplemented("the JDK has no convolution op: the jvm runner has the book's loops only "
                                         + "(a DJL runner would call Convolution.conv2d)");
            default:
                throw new NotImplemented("verb " + verb + " is not implemented by the jvm runner");
        }
    }

    // ------------------------------------------------------------------------------------------------
    // arithmetic in the request's dtype
    // ------------------------------------------------------------------------------------------------

    /** The dtype's own arithmetic on values held as doubles. */
    abstract static class Arith {
        final String dtype;

        Arith(String dtype) {
            this.dtype = dtype;
        }

        abstract double add(double a, double b);

        abstract double sub(double a, double b);

        abstract double mul(double a, double b);

        /** A value from the wire (or a double constant such as lr) as the dtype holds it. */
        abstract double cast(double a);

        static final Arith F64 = new Arith("float64") {
            double add(double a, double b) { return a + b; }
            double sub(double a, double b) { return a - b; }
            double mul(double a, double b) { return a * b; }
            double cast(double a) { return a; }
        };

        /** float32: each operation is a Java float operation, rounded to float as a float32 framework rounds. */
        static final Arith F32 = new Arith("float32") {
            double add(double a, double b) { return (float) a + (float) b; }
            double sub(double a, double b) { return (float) a - (float) b; }
            double mul(double a, double b) { return (float) a * (float) b; }
            double cast(double a) { return (float) a; }
        };

        static Arith of(String dtype) {
            if ("float64".equals(dtype)) {
                return F64;
            }
            if ("float32".equals(dtype)) {
                return F32;
            }
            throw new Invalid("dtype " + dtype + " is not supported by the jvm runner (float32 and float64 only)");
        }
    }

    /** A 1-D or 2-D array, row-major, values held as doubles in the dtype's set of values. */
    static final class Tensor {
        final String dtype;
        final int[] shape;
        final double[] data;

        Tensor(String dtype, int[] shape, double[] data) {
            this.dtype = dtype;
            this.shape = shape;
            this.data = data;
        }

        static Tensor zeros(Arith ar, int... shape) {
            int n = 1;
            for (int s : shape) {
                n = Math.multiplyExact(n, s);
            }
            return new Tensor(ar.dtype, shape.clone(), new double[n]);
        }

        int rows() {
            return shape[0];
        }

        int cols() {
            return shape[1];
        }

        double at(int i, int j) {
            return data[i * shape[1] + j];
        }

        Tensor copy() {
            return new Tensor(dtype, shape.clone(), data.clone());
        }
    }

    // ------------------------------------------------------------------------------------------------
    // the verbs
    // ------------------------------------------------------------------------------------------------

    static void require2d(Tensor t, String name) {
        if (t.shape.length != 2) {
            throw new Invalid(name + " must be 2-D, got shape " + Arrays.toString(t.shape));
        }
    }

    /** backends.base.output_shape: (nh-kh+1, nw-kw+1), or "invalid" for a kernel larger than the input. */
    static int[] outputShape(Tensor X, Tensor K) {
        require2d(X, "the input");
        require2d(K, "the kernel");
        int nh = X.rows(), nw = X.cols(), kh = K.rows(), kw = K.cols();
        if (kh > nh || kw > nw) {
            throw new Invalid("kernel " + kh + "x" + kw + " is larger than the input " + nh + "x" + nw
                              + ": no valid position");
        }
        return new int[] {nh - kh + 1, nw - kw + 1};
    }

    /** The book's corr2d: Y[i, j] = (X[i:i+h, j:j+w] * K).sum(), the sum left to right from 0. */
    static Tensor corr2d(Arith ar, Tensor X, Tensor K) {
        int[] os = outputShape(X, K);
        int h = K.rows(), w = K.cols();
        Tensor Y = Tensor.zeros(ar, os);
        for (int i = 0; i < os[0]; i++) {
            for (int j = 0; j < os[1]; j++) {
                double s = 0.0;
                for (int a = 0; a < h; a++) {
                    for (int c = 0; c < w; c++) {
                        s = ar.add(s, ar.mul(X.at(i + a, j + c), K.at(a, c)));
                    }
                }
                Y.data[i * os[1] + j] = s;
            }
        }
        return Y;
    }

    /** Exercise 4: the (oh*ow, kh*kw) matrix of windows (im2col) times the flattened kernel. */
    static Tensor corr2dMatmul(Arith ar, Tensor X, Tensor K) {
        int[] os = outputShape(X, K);
        int oh = os[0], ow = os[1], kh = K.rows(), kw = K.cols();
        int rows = oh * ow, cols = kh * kw;
        double[] im2col = new double[rows * cols];
        for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
                for (int a = 0; a < kh; a++) {
                    for (int c = 0; c < kw; c++) {
                        im2col[(i * ow + j) * cols + a * kw + c] = X.at(i + a, j + c);
                    }
                }
            }
        }
        double[] k = K.data;  // K.reshape(kh * kw): row-major already
        Tensor Y = Tensor.zeros(ar, oh, ow);  // (oh * ow) reshaped to (oh, ow): the same row-major data
        for (int r = 0; r < rows; r++) {
            double s = 0.0;
            for (int q = 0; q < cols; q++) {
                s = ar.add(s, ar.mul(im2col[r * cols + q], k[q]));
            }
            Y.data[r] = s;
        }
        return Y;
    }

    /** The book's Conv2D: a weight (the kernel) and a bias (one value); forward = corr2d(x, weight) + bias. */
    static final class Conv2D {
        final Arith ar;
        final Tensor weight;
        final Tensor bias;

        Conv2D(Arith ar, int kh, int kw) {
            this.ar = ar;
            this.weight = Tensor.zeros(ar, kh, kw);
            this.bias = Tensor.zeros(ar, 1);
        }

        static Conv2D loaded(Arith ar, Tensor K, Tensor b) {
            require2d(K, "the kernel");
            if (b.shape.length != 1 || b.shape[0] != 1) {
                throw new Invalid("the bias must have shape [1], got " + Arrays.toString(b.shape));
            }
            Conv2D layer = new Conv2D(ar, K.rows(), K.cols());
            System.arraycopy(K.data, 0, layer.weight.data, 0, K.data.length);
            layer.bias.data[0] = b.data[0];
            return layer;
        }

        /** The trainable parameters, by name, as the layer enumerates them. */
        Map<String, Tensor> parameters() {
            Map<String, Tensor> p = new LinkedHashMap<>();
            p.put("weight", weight);
            p.put("bias", bias);
            return p;
        }

        Tensor forward(Tensor X) {
            Tensor Y = corr2d(ar, X, weight);
            for (int n = 0; n < Y.data.length; n++) {
                Y.data[n] = ar.add(Y.data[n], bias.data[0]);
            }
            return Y;
        }
    }

    static void requireShape(Tensor t, int[] shape, String what) {
        if (!Arrays.equals(t.shape, shape)) {
            throw new Invalid(what + " has shape " + Arrays.toString(t.shape) + ", expected " + Arrays.toString(shape));
        }
    }

    /** d/dW sum(r * corr2d(X, W)) = corr2d(X, r): the weight's gradient for an output gradient r. */
    static Tensor kernelGradient(Arith ar, Tensor X, Tensor r) {
        return corr2d(ar, X, r);
    }

    /** d/dX sum(dY * corr2d(X, K)): each dY[i, j] times K scattered back onto the window at (i, j). */
    static Tensor inputGradient(Arith ar, int[] xShape, Tensor K, Tensor dY) {
        Tensor dX = Tensor.zeros(ar, xShape);
        int h = K.rows(), w = K.cols(), nw = xShape[1];
        for (int i = 0; i < dY.rows(); i++) {
            for (int j = 0; j < dY.cols(); j++) {
                double g = dY.at(i, j);
                for (int a = 0; a < h; a++) {
                    for (int c = 0; c < w; c++) {
                        int n = (i + a) * nw + (j + c);
                        dX.data[n] = ar.add(dX.data[n], ar.mul(g, K.at(a, c)));
                    }
                }
            }
        }
        return dX;
    }

    /** One plain SGD step on sum((Conv2D(X) - Y)^2), over the parameters the layer enumerates. */
    static Map<String, Object> layerStep(Arith ar, Tensor X, Tensor K, Tensor b, Tensor Y, double lr) {
        Conv2D layer = Conv2D.loaded(ar, K, b);
        Tensor r = layer.forward(X);
        requireShape(Y, r.shape, "Y");
        for (int n = 0; n < r.data.length; n++) {
            r.data[n] = ar.sub(r.data[n], Y.data[n]);
        }
        // dL/dweight = 2 corr2d(X, r); dL/dbias = 2 sum(r).
        Tensor gw = kernelGradient(ar, X, r);
        for (int n = 0; n < gw.data.length; n++) {
            gw.data[n] = ar.mul(2.0, gw.data[n]);
        }
        double rsum = 0.0;
        for (double v : r.data) {
            rsum = ar.add(rsum, v);
        }
        Tensor gb = Tensor.zeros(ar, 1);
        gb.data[0] = ar.mul(2.0, rsum);
        Map<String, Tensor> grads = Map.of("weight", gw, "bias", gb);
        double step = ar.cast(lr);
        Map<String, Object> after = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : layer.parameters().entrySet()) {
            Tensor p = e.getValue(), g = grads.get(e.getKey());
            for (int n = 0; n < p.data.length; n++) {
                p.data[n] = ar.sub(p.data[n], ar.mul(step, g.data[n]));
            }
            after.put(e.getKey(), p.copy());
        }
        return after;
    }

    /** Y = corr2d(X, K1), Z = corr2d(Y, K2): [dZ.sum()/dX, dY[0, 0]/dX], by the hand-derived backward pass. */
    static List<Object> receptiveField(Arith ar, Tensor X, Tensor K1, Tensor K2) {
        Tensor Y = corr2d(ar, X, K1);
        int[] zs = outputShape(Y, K2);
        Tensor ones = Tensor.zeros(ar, zs);
        Arrays.fill(ones.data, 1.0);
        Tensor dZdY = inputGradient(ar, Y.shape, K2, ones);
        Tensor dZdX = inputGradient(ar, X.shape, K1, dZdY);
        Tensor seed = Tensor.zeros(ar, Y.shape);
        seed.data[0] = 1.0;
        Tensor dY00dX = inputGradient(ar, X.shape, K1, seed);
        return List.of(dZdX, dY00dX);
    }

    /** The book's kernel-learning loop: no bias, plain gradient descent on the SUM of squared errors. */
    static Map<String, Object> learnKernel(Arith ar, Tensor X, Tensor Y, int[] kernelSize, double lr, int steps,
                                           Tensor initial, Long seed) {
        if (steps < 0) {
            throw new Invalid("steps must be >= 0, got " + steps);
        }
        Tensor W;
        if (initial == null) {
            // The layer's own initialisation, seeded: uniform on [-1, 1), rounded to the dtype.
            if (seed == null) {
                throw new Invalid("learn_kernel needs a seed when no initial kernel is given");
            }
            Random rng = new Random(seed);
            W = Tensor.zeros(ar, kernelSize);
            for (int n = 0; n < W.data.length; n++) {
                W.data[n] = ar.cast(rng.nextDouble() * 2.0 - 1.0);
            }
        } else {
            requireShape(initial, kernelSize, "the initial kernel");
            W = initial.copy();
        }
        Tensor W0 = W.copy();
        requireShape(Y, outputShape(X, W), "Y");
        double step = ar.cast(lr);
        Tensor losses = Tensor.zeros(ar, steps);
        for (int t = 0; t < steps; t++) {
            Tensor r = corr2d(ar, X, W);
            double loss = 0.0;
            for (int n = 0; n < r.data.length; n++) {
                r.data[n] = ar.sub(r.data[n], Y.data[n]);
                loss = ar.add(loss, ar.mul(r.data[n], r.data[n]));
            }
            losses.data[t] = loss;  // before update t
            Tensor g = kernelGradient(ar, X, r);  // dL/dW = 2 corr2d(X, r)
            for (int n = 0; n < W.data.length; n++) {
                W.data[n] = ar.sub(W.data[n], ar.mul(step, ar.mul(2.0, g.data[n])));
            }
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("initial", W0);
        result.put("losses", losses);
        result.put("kernel", W);
        return result;
    }

    // ------------------------------------------------------------------------------------------------
    // arguments
    // ------------------------------------------------------------------------------------------------

    static final class Invalid extends RuntimeException {
        Invalid(String message) {
            super(message);
        }
    }

    static final class NotImplemented extends RuntimeException {
        NotImplemented(String message) {
            super(message);
        }
    }

    /** A request's args, read by the names of the contract. */
    static final class Args {
        final Map<?, ?> args;

        Args(Map<?, ?> args) {
            this.args = args;
        }

        Object get(String name) {
            if (!args.containsKey(name)) {
                throw new Invalid("missing argument " + name);
            }
            return args.get(name);
        }

        String string(String name) {
            Object v = get(name);
            if (!(v instanceof String)) {
                throw new Invalid("argument " + name + " must be a string");
            }
            return (String) v;
        }

        double number(String name) {
            Object v = get(name);
            if (v instanceof Json.Num) {
                return ((Json.Num) v).doubleValue();
            }
            throw new Invalid("argument " + name + " must be a number");
        }

        int integer(String name) {
            Object v = get(name);
            if (v instanceof Json.Num) {
                return Math.toIntExact(((Json.Num) v).longValue());
            }
            throw new Invalid("argument " + name + " must be an integer");
        }

        Long optionalLong(String name) {
            Object v = args.get(name);
            if (v == null) {
                return null;
            }
            if (v instanceof Json.Num) {
                return ((Json.Num) v).longValue();
            }
            throw new Invalid("argument " + name + " must be an integer or null");
        }

        int[] kernelSize(String name) {
            Object v = get(name);
            if (!(v instanceof List) || ((List<?>) v).size() != 2) {
                throw new Invalid("argument " + name + " must be a list of two integers");
            }
            int[] ks = new int[2];
            for (int d = 0; d < 2; d++) {
                Object e = ((List<?>) v).get(d);
                if (!(e instanceof Json.Num)) {
                    throw new Invalid("argument " + name + " must be a list of two integers");
                }
                ks[d] = Math.toIntExact(((Json.Num) e).longValue());
                if (ks[d] < 0) {
                    throw new Invalid("argument " + name + " has a negative size");
                }
            }
            return ks;
        }

        Tensor array(String name) {
            Tensor t = optionalArray(name);
            if (t == null) {
                throw new Invalid("argument " + name + " must be an array object, got " + (args.containsKey(name) ? "null" : "nothing"));
            }
            return t;
        }

        Tensor optionalArray(String name) {
            Object v = args.get(name);
            if (v == null) {  // null, or absent
                return null;
            }
            if (!(v instanceof Map)) {
                throw new Invalid("argument " + name + " must be an array object");
            }
            return Json.toTensor((Map<?, ?>) v, name);
        }

        /** The arithmetic of the arrays' dtype; they must all share it. */
        Arith arith(Tensor... arrays) {
            String dtype = arrays[0].dtype;
            for (Tensor t : arrays) {
                if (!t.dtype.equals(dtype)) {
                    throw new Invalid("mixed dtypes: " + dtype + " and " + t.dtype);
                }
            }
            return Arith.of(dtype);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // JSON: a small reader and writer
    // ------------------------------------------------------------------------------------------------

    static final class Json {
        /** A JSON number, kept as its text: converted exactly when it is read as a double or an integer. */
        static final class Num {
            final String text;

            Num(String text) {
                this.text = text;
            }

            double doubleValue() {
                return Double.parseDouble(text);
            }

            long longValue() {
                try {
                    return Long.parseLong(text);
                } catch (NumberFormatException e) {
                    try {
                        return new BigDecimal(text).longValueExact();
                    } catch (ArithmeticException | NumberFormatException e2) {
                        throw new Invalid("not an integer: " + text);
                    }
                }
            }

            @Override
            public String toString() {
                return text;
            }
        }

        private final String s;
        private int pos;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json p = new Json(text);
            p.skipWhitespace();
            Object v = p.value();
            p.skipWhitespace();
            if (p.pos != p.s.length()) {
                throw p.error("trailing characters");
            }
            return v;
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("malformed JSON at character " + pos + ": " + what);
        }

        private void skipWhitespace() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                    pos++;
                } else {
                    break;
                }
            }
        }

        private Object value() {
            if (pos >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return object();
                case '[':
                    return array();
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("unexpected character '" + c + "'");
            }
        }

        private Object literal(String word, Object v) {
            if (!s.startsWith(word, pos)) {
                throw error("expected " + word);
            }
            pos += word.length();
            return v;
        }

        private Map<String, Object> object() {
            Map<String, Object> m = new LinkedHashMap<>();
            pos++;  // {
            skipWhitespace();
            if (pos < s.length() && s.charAt(pos) == '}') {
                pos++;
                return m;
            }
            while (true) {
                skipWhitespace();
                if (pos >= s.length() || s.charAt(pos) != '"') {
                    throw error("expected a string key");
                }
                String key = string();
                skipWhitespace();
                expect(':');
                skipWhitespace();
                m.put(key, value());
                skipWhitespace();
                if (pos < s.length() && s.charAt(pos) == ',') {
                    pos++;
                } else {
                    expect('}');
                    return m;
                }
            }
        }

        private List<Object> array() {
            List<Object> list = new ArrayList<>();
            pos++;  // [
            skipWhitespace();
            if (pos < s.length() && s.charAt(pos) == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipWhitespace();
                list.add(value());
                skipWhitespace();
                if (pos < s.length() && s.charAt(pos) == ',') {
                    pos++;
                } else {
                    expect(']');
                    return list;
                }
            }
        }

        private void expect(char c) {
            if (pos >= s.length() || s.charAt(pos) != c) {
                throw error("expected '" + c + "'");
            }
            pos++;
        }

        private String string() {
            pos++;  // opening quote
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (pos >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(pos++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c != '\\') {
                    if (c < 0x20) {
                        throw error("control character in a string");
                    }
                    sb.append(c);
                    continue;
                }
                if (pos >= s.length()) {
                    throw error("unterminated escape");
                }
                char e = s.charAt(pos++);
                switch (e) {
                    case '"': sb.append('"'); break;
                    case '\\': sb.append('\\'); break;
                    case '/': sb.append('/'); break;
                    case 'b': sb.append('\b'); break;
                    case 'f': sb.append('\f'); break;
                    case 'n': sb.append('\n'); break;
                    case 'r': sb.append('\r'); break;
                    case 't': sb.append('\t'); break;
                    case 'u':
                        if (pos + 4 > s.length()) {
                            throw error("short \\u escape");
                        }
                        try {
                            sb.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw error("bad \\u escape");
                        }
                        pos += 4;  // a surrogate pair arrives as two escapes, appended one after the other
                        break;
                    default:
                        throw error("bad escape \\" + e);
                }
            }
        }

        private Num number() {
            int start = pos;
            if (s.charAt(pos) == '-') {
                pos++;
            }
            int digits = pos;
            while (pos < s.length() && Character.isDigit(s.charAt(pos))) {
                pos++;
            }
            if (pos == digits) {
                throw error("a number needs digits");
            }
            if (pos < s.length() && s.charAt(pos) == '.') {
                pos++;
                int frac = pos;
                while (pos < s.length() && Character.isDigit(s.charAt(pos))) {
                    pos++;
                }
                if (pos == frac) {
                    throw error("a fraction needs digits");
                }
            }
            if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                pos++;
                if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                    pos++;
                }
                int exp = pos;
                while (pos < s.length() && Character.isDigit(s.charAt(pos))) {
                    pos++;
                }
                if (pos == exp) {
                    throw error("an exponent needs digits");
                }
            }
            return new Num(s.substring(start, pos));
        }

        /** An array object {"dtype", "shape", "data"} as a Tensor, each value exactly as the dtype holds it. */
        static Tensor toTensor(Map<?, ?> m, String name) {
            Object dt = m.get("dtype"), sh = m.get("shape"), da = m.get("data");
            if (!(dt instanceof String) || !(sh instanceof List) || !(da instanceof List)) {
                throw new Invalid("argument " + name + " must be an array object {dtype, shape, data}");
            }
            String dtype = (String) dt;
            Arith ar = Arith.of(dtype);
            List<?> shapeList = (List<?>) sh, dataList = (List<?>) da;
            int[] shape = new int[shapeList.size()];
            long n = 1;
            for (int d = 0; d < shape.length; d++) {
                Object e = shapeList.get(d);
                if (!(e instanceof Num)) {
                    throw new Invalid("argument " + name + ": the shape must hold integers");
                }
                long size = ((Num) e).longValue();
                if (size < 0 || size > Integer.MAX_VALUE) {
                    throw new Invalid("argument " + name + ": bad size " + size + " in the shape");
                }
                shape[d] = (int) size;
                n *= size;
            }
            if (n != dataList.size()) {
                throw new Invalid("argument " + name + ": shape " + Arrays.toString(shape) + " holds " + n
                                  + " values, data has " + dataList.size());
            }
            double[] data = new double[dataList.size()];
            for (int k = 0; k < data.length; k++) {
                data[k] = ar.cast(value(dataList.get(k), name));
            }
            return new Tensor(dtype, shape, data);
        }

        private static double value(Object v, String name) {
            if (v instanceof Num) {
                return ((Num) v).doubleValue();
            }
            if ("NaN".equals(v)) {
                return Double.NaN;
            }
            if ("Infinity".equals(v)) {
                return Double.POSITIVE_INFINITY;
            }
            if ("-Infinity".equals(v)) {
                return Double.NEGATIVE_INFINITY;
            }
            throw new Invalid("argument " + name + ": not a number in data: " + v);
        }

        static void write(Object v, StringBuilder sb) {
            if (v == null) {
                sb.append("null");
            } else if (v instanceof String) {
                writeString((String) v, sb);
            } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long || v instanceof Num) {
                sb.append(v);
            } else if (v instanceof Double || v instanceof Float) {
                writeDouble(((Number) v).doubleValue(), sb);
            } else if (v instanceof Tensor) {
                writeTensor((Tensor) v, sb);
            } else if (v instanceof int[]) {
                int[] a = (int[]) v;
                sb.append('[');
                for (int k = 0; k < a.length; k++) {
                    if (k > 0) {
                        sb.append(", ");
                    }
                    sb.append(a[k]);
                }
                sb.append(']');
            } else if (v instanceof Map) {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) {
                        sb.append(", ");
                    }
                    first = false;
                    writeString(String.valueOf(e.getKey()), sb);
                    sb.append(": ");
                    write(e.getValue(), sb);
                }
                sb.append('}');
            } else if (v instanceof List) {
                sb.append('[');
                boolean first = true;
                for (Object e : (List<?>) v) {
                    if (!first) {
                        sb.append(", ");
                    }
                    first = false;
                    write(e, sb);
                }
                sb.append(']');
            } else {
                throw new IllegalStateException("cannot write " + v.getClass().getName() + " as JSON");
            }
        }

        /** Double.toString round-trips every double (a widened float included); non-finite values as strings. */
        static void writeDouble(double d, StringBuilder sb) {
            if (Double.isNaN(d)) {
                sb.append("\"NaN\"");
            } else if (Double.isInfinite(d)) {
                sb.append(d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
            } else {
                sb.append(Double.toString(d));  // "1.0E-5" is a valid JSON number
            }
        }

        static void writeTensor(Tensor t, StringBuilder sb) {
            sb.append("{\"dtype\": ");
            writeString(t.dtype, sb);
            sb.append(", \"shape\": ");
            write(t.shape, sb);
            sb.append(", \"data\": [");
            boolean f32 = "float32".equals(t.dtype);
            for (int k = 0; k < t.data.length; k++) {
                if (k > 0) {
                    sb.append(", ");
                }
                // A float32 value is held widened: (double) (float) x is the float itself, written exactly.
                writeDouble(f32 ? (double) (float) t.data[k] : t.data[k], sb);
            }
            sb.append("]}");
        }

        static void writeString(String str, StringBuilder sb) {
            sb.append('"');
            for (int k = 0; k < str.length(); k++) {
                char c = str.charAt(k);
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    case '\b': sb.append("\\b"); break;
                    case '\f': sb.append("\\f"); break;
                    default:
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                }
            }
            sb.append('"');
        }
    }
}
