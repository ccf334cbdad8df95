// Forward and backward through the whole network for one block of samples.
//
// Backpropagation as derived: forward stores every layer's z; the loss turns
// the output pre-activations into δ_k = g'(a_k) ∂E^n/∂y_k; each layer, from
// the last to the first, writes its Σ_n ∂E^n/∂w and passes
// δ_j = h'(a_j) Σ_k w_kj δ_k down.

extension Network {
    /// Runs the block in `workspace` (inputs in `activation(0)`) through every
    /// layer. The last layer's output is left as pre-activations a unless
    /// `applyOutputActivation` is set, in which case it becomes y = g(a).
    func forward(
        rows: Int, workspace: Workspace<T>, parameters: UnsafePointer<T>, transposedWeights wT: TransposedWeights<T>,
        applyOutputActivation: Bool, products: Products
    ) {
        precondition(rows <= workspace.capacity, "block of \(rows) rows exceeds workspace \(workspace.capacity)")
        for (l, layer) in layers.enumerated() {
            let isOutput = l == layers.count - 1
            layer.forward(workspace.activation(l), rows: rows, columns: 0..<layer.outputCount,
                          parameters: parameters, transposedWeights: wT.panels(l, layer), into: workspace.activation(l + 1),
                          activate: !isOutput || applyOutputActivation, products: products)
        }
        if applyOutputActivation, layers[layers.count - 1].activation == .softmax {
            applySoftmax(workspace.activation(layers.count), rows: rows, width: outputCount)
        }
    }

    /// The forward pass and the output errors δ_k = g'(a_k) ∂E^n/∂y_k (in
    /// `workspace.deltaA`); returns Σ_{n in block} E^n.
    func forwardErrors(rows: Int, workspace: Workspace<T>, parameters: UnsafePointer<T>,
                       transposedWeights wT: TransposedWeights<T>, products: Products) -> T {
        forward(rows: rows, workspace: workspace, parameters: parameters, transposedWeights: wT,
                applyOutputActivation: false, products: products)
        let L = layers.count
        return loss.outputErrors(
            workspace.activation(L), targets: workspace.targets, rows: rows, width: outputCount,
            outputActivation: layers[L - 1].activation, delta: workspace.deltaA)
    }

    /// The backward pass from the output errors in `workspace.deltaA`: every
    /// layer's Σ_n ∂E^n/∂w into `gradient`, δ passed down layer by layer.
    func backward(
        rows: Int, workspace: Workspace<T>, parameters: UnsafePointer<T>,
        gradient: UnsafeMutablePointer<T>, products: Products
    ) {
        let L = layers.count
        var delta = workspace.deltaA, below = workspace.deltaB
        for l in stride(from: L - 1, through: 0, by: -1) {
            layers[l].backward(
                delta: delta, input: workspace.activation(l), rows: rows, segment: max(rows, 1),
                parameters: parameters, gradient: gradient,
                inputDelta: l > 0 ? below : nil,
                inputActivation: l > 0 ? layers[l - 1].activation : .identity,
                products: products)
            swap(&delta, &below)
        }
    }

    // MARK: - Whole-array conveniences (tests, gradient checks, small data)

    /// The summed gradient Σ_n ∂E^n/∂w and error E = Σ_n E^n over `rows`
    /// samples, in one block.
    ///
    /// - Parameters:
    ///   - inputs: x, [rows, inputCount] row-major.
    ///   - targets: t, [rows, outputCount] row-major (one-hot for classes).
    ///   - kernel: the path of the matrix products (every path gives the same bits).
    public func gradient(inputs: [T], targets: [T], kernel: Kernel = .automatic) -> (gradient: [T], error: T) {
        let rows = inputs.count / inputCount
        precondition(inputs.count == rows * inputCount && targets.count == rows * outputCount,
                     "inputs \(inputs.count) / targets \(targets.count) do not match \(rows) rows")
        let workspace = load(inputs: inputs, targets: targets, rows: rows)
        let wT = TransposedWeights(self)
        var gradient = [T](repeating: 0, count: parameterCount)
        let error = parameters.withUnsafeBufferPointer { p in
            gradient.withUnsafeMutableBufferPointer { g in
                let error = forwardErrors(rows: rows, workspace: workspace, parameters: p.baseAddress!,
                                          transposedWeights: wT, products: Products(kernel: kernel))
                backward(rows: rows, workspace: workspace, parameters: p.baseAddress!, gradient: g.baseAddress!,
                         products: Products(kernel: kernel))
                return error
            }
        }
        return (gradient, error)
    }

    /// E = Σ_n E^n over the samples (for finite differences and evaluation).
    public func error(inputs: [T], targets: [T], kernel: Kernel = .automatic) -> T {
        let rows = inputs.count / inputCount
        let workspace = load(inputs: inputs, targets: targets, rows: rows)
        let wT = TransposedWeights(self)
        return parameters.withUnsafeBufferPointer { p in
            forwardErrors(rows: rows, workspace: workspace, parameters: p.baseAddress!, transposedWeights: wT,
                          products: Products(kernel: kernel))
        }
    }

    /// The network's outputs y for `inputs` ([rows, inputCount]): class
    /// probabilities for softmax, g(a) otherwise. Returns [rows, outputCount].
    public func predict(inputs: [T], kernel: Kernel = .automatic, precision: Precision = .fp32) -> [T] {
        let rows = inputs.count / inputCount
        let workspace = load(inputs: inputs, targets: [], rows: rows)
        let wT = TransposedWeights(self)
        parameters.withUnsafeBufferPointer { p in
            forward(rows: rows, workspace: workspace, parameters: p.baseAddress!, transposedWeights: wT,
                    applyOutputActivation: true, products: Products(kernel: kernel, precision: precision))
        }
        return Array(UnsafeBufferPointer(start: workspace.activation(layers.count), count: rows * outputCount))
    }

    private func load(inputs: [T], targets: [T], rows: Int) -> Workspace<T> {
        let workspace = Workspace<T>(sizes: sizes, capacity: max(rows, 1))
        workspace.activation(0).update(from: inputs, count: inputs.count)
        workspace.targets.update(from: targets, count: targets.count)
        return workspace
    }
}
