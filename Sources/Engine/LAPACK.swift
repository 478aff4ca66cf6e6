import CBLAS

public enum LAPACKError: Error, CustomStringConvertible {
    case failed(routine: String, info: Int32)
    public var description: String {
        switch self {
        case .failed(let routine, let info):
            return "LAPACK \(routine) failed with info=\(info) (did not converge or bad argument)"
        }
    }
}

public enum SingularValues {
    /// All singular values of a row-major rows×cols matrix, largest first.
    /// `divideAndConquer` uses sgesdd (much faster on large matrices), otherwise sgesvd.
    public static func compute(
        _ matrix: UnsafePointer<Float>, rows: Int, cols: Int, divideAndConquer: Bool = true
    ) throws -> [Float] {
        var copy = Array(UnsafeBufferPointer(start: matrix, count: rows * cols))
        var values = [Float](repeating: 0, count: min(rows, cols))
        var superb = [Float](repeating: 0, count: max(min(rows, cols) - 1, 1))
        // jobz/jobu 'N': U and Vᵀ are never touched, but LAPACKE still checks their leading
        // dimensions in row-major mode.
        var dummyU: Float = 0
        var dummyVT: Float = 0
        let info: Int32 = copy.withUnsafeMutableBufferPointer { a in
            values.withUnsafeMutableBufferPointer { s in
                if divideAndConquer {
                    return LAPACKE_sgesdd(
                        LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "N")), Int32(rows), Int32(cols),
                        a.baseAddress, Int32(cols), s.baseAddress, &dummyU, Int32(max(rows, 1)), &dummyVT, Int32(max(cols, 1)))
                }
                return superb.withUnsafeMutableBufferPointer { work in
                    LAPACKE_sgesvd(
                        LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")),
                        Int32(rows), Int32(cols), a.baseAddress, Int32(cols), s.baseAddress,
                        &dummyU, Int32(max(rows, 1)), &dummyVT, Int32(max(cols, 1)), work.baseAddress)
                }
            }
        }
        if info != 0 {
            throw LAPACKError.failed(routine: divideAndConquer ? "sgesdd" : "sgesvd", info: info)
        }
        return values
    }
}
