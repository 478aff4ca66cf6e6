import Foundation

/// Unbuffered line output, so progress reaches a pipe (e.g. `launch`'s prefixer) at once.
public enum Console {
    public static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    public static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
