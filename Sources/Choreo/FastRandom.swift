// FastRandom: unique ids (UUID v4 text) and trace/span ids without a system call per id.

import Synchronization

/// A process-wide xoshiro256** generator seeded once from the system's CSPRNG. Ids need to be
/// unique and unpredictable enough for tracing, not secret; Foundation's `UUID()` on Linux
/// opens /dev/urandom for every id, which capped message throughput at a few thousand per second.
enum FastRandom {
    private static let state = Mutex<(UInt64, UInt64, UInt64, UInt64)>(
        {
            var system = SystemRandomNumberGenerator()
            return (system.next(), system.next(), system.next(), system.next() | 1)
        }())

    /// The next 64 random bits.
    static func next() -> UInt64 {
        state.withLock { s in
            let result = rotate(s.1 &* 5, 7) &* 9
            let t = s.1 << 17
            s.2 ^= s.0
            s.3 ^= s.1
            s.1 ^= s.2
            s.0 ^= s.3
            s.2 ^= t
            s.3 = rotate(s.3, 45)
            return result
        }
    }

    private static func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    private static let digits = Array("0123456789abcdef".utf8)

    /// `count` random bytes as lowercase hex.
    static func hex(bytes count: Int) -> String {
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        var word = next()
        var left = 8
        for _ in 0..<count {
            if left == 0 {
                word = next()
                left = 8
            }
            let byte = UInt8(truncatingIfNeeded: word)
            word >>= 8
            left -= 1
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A random (version 4) UUID in lowercase text form.
    static func uuid() -> String {
        var high = next()
        var low = next()
        high = (high & ~(0xF << 12)) | (0x4 << 12)  // version 4
        low = (low & ~(0xC << 60)) | (0x8 << 60)  // variant 10xx
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
            if index == 8 || index == 12 { out.append(UInt8(ascii: "-")) }
            out.append(digits[Int((high >> UInt64(shift)) & 0xF)])
        }
        for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
            if index == 0 || index == 4 { out.append(UInt8(ascii: "-")) }
            out.append(digits[Int((low >> UInt64(shift)) & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
