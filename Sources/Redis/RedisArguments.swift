// RedisArguments: packs a command's arguments into one buffer for hiredis's argv calls.

/// A command's arguments packed into one contiguous buffer with their lengths, so hiredis
/// receives them through `redisCommandArgv` without any format string (binary-safe).
struct RedisArguments {
    private var storage: [UInt8] = []
    private var offsets: [Int] = []
    private var lengths: [Int] = []

    init(_ arguments: [String]) {
        offsets.reserveCapacity(arguments.count)
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            offsets.append(storage.count)
            let before = storage.count
            storage.append(contentsOf: argument.utf8)
            lengths.append(storage.count - before)
        }
        storage.append(0)
    }

    init(bytes arguments: [[UInt8]]) {
        for argument in arguments {
            offsets.append(storage.count)
            storage.append(contentsOf: argument)
            lengths.append(argument.count)
        }
        storage.append(0)
    }

    /// Calls `body` with `argc`, `argv` and `argvlen` pointing into the packed buffer.
    func withArgv<R>(
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            var argv: [UnsafePointer<CChar>?] = offsets.map {
                base.advanced(by: $0).assumingMemoryBound(to: CChar.self)
            }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(offsets.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}

/// Encodes commands in RESP (`*N\r\n$len\r\narg\r\n...`) straight into one buffer, so a
/// whole pipeline reaches hiredis in one append.
enum RESPEncoder {
    static func append(_ command: [String], to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        appendDecimal(command.count, to: &buffer)
        buffer.append(13)
        buffer.append(10)
        for argument in command {
            var argument = argument
            argument.withUTF8 { bytes in
                buffer.append(UInt8(ascii: "$"))
                appendDecimal(bytes.count, to: &buffer)
                buffer.append(13)
                buffer.append(10)
                buffer.append(contentsOf: bytes)
                buffer.append(13)
                buffer.append(10)
            }
        }
    }

    static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        if value < 10 {
            buffer.append(UInt8(48 + value))
            return
        }
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[count] = UInt8(48 + rest % 10)
                rest /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { buffer.append(raw[index]) }
        }
    }
}
