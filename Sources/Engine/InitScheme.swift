// How the weight matrices (linear and conv) and their biases start. fan_in = in (linear) or
// in·kh·kw (conv). BN γ = 1 and β = 0 under every scheme. The raw values are the config's
// `init` values (docs/configuration.md, "Initialisation").

public enum InitScheme: String, Sendable, CaseIterable {
    /// Weights N(0, 2/fan_in) (He et al. 2015, for ReLU networks); biases U(±1/√fan_in).
    case kaimingNormal = "kaiming_normal"
    /// PyTorch's default for Linear and Conv2d: weights and biases U(±1/√fan_in)
    /// (`kaiming_uniform_(a=√5)`, whose bound gain·√(3/fan_in) with gain √(1/3) is 1/√fan_in).
    case pytorch
    /// Chainer's default for Linear and Convolution2D: weights N(0, 1/fan_in) (LeCun normal),
    /// biases 0 (`initial_bias=None`).
    case lecunNormal = "lecun_normal"
}
