import CBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The one door to BLAS. `gemm` is the only caller of cblas_sgemm in the project; the
// level-1/2 helpers below serve the regulariser and the optimiser. All matrices are row-major.

public enum Transpose: Sendable {
    case none, transposed
    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// C (m×n) = alpha · op(A) (m×k) · op(B) (k×n) + beta · C, row-major with leading dimensions.
@inline(__always)
public func gemm(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
        alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// y = alpha · op(A) x + beta · y, A row-major rows×cols.
public func gemv(
    _ trans: Transpose, rows: Int, cols: Int, alpha: Float = 1, _ a: UnsafePointer<Float>,
    _ x: UnsafePointer<Float>, beta: Float, _ y: UnsafeMutablePointer<Float>
) {
    cblas_sgemv(
        CblasRowMajor, trans.cblas, Int32(rows), Int32(cols), alpha, a, Int32(cols), x, 1, beta,
        y, 1)
}

/// A (rows×cols) += alpha · x yᵀ.
public func ger(
    rows: Int, cols: Int, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
    _ a: UnsafeMutablePointer<Float>
) {
    cblas_sger(CblasRowMajor, Int32(rows), Int32(cols), alpha, x, 1, y, 1, a, Int32(cols))
}

/// y += alpha · x.
@inline(__always)
public func axpy(count: Int, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
}

/// x *= alpha.
@inline(__always)
public func scale(count: Int, by alpha: Float, _ x: UnsafeMutablePointer<Float>) {
    cblas_sscal(Int32(count), alpha, x, 1)
}

/// Euclidean norm, accumulated in double for a stable result on long vectors.
public func norm2(count: Int, _ x: UnsafePointer<Float>) -> Float {
    var sum = 0.0
    for i in 0..<count { sum += Double(x[i]) * Double(x[i]) }
    return Float(sum.squareRoot())
}

/// BLAS threads of this process (OpenBLAS); 0 or less leaves OpenBLAS's own choice.
public enum BLASThreads {
    public static func set(_ count: Int) {
        if count > 0 { openblas_set_num_threads(Int32(count)) }
    }
    public static var current: Int { Int(openblas_get_num_threads()) }
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
    /// How this process's kernel was chosen, for measurement headers: "OPENBLAS_CORETYPE=NAME"
    /// when the environment pins it (a machine image may set it), else "OpenBLAS's own choice".
    /// The same CPU can run kernels of different speed and bits, so a figure needs both.
    public static var coreChoice: String {
        guard let pinned = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }), !pinned.isEmpty else {
            return "OpenBLAS's own choice"
        }
        return "OPENBLAS_CORETYPE=" + pinned
    }
}
