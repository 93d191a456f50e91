"""Opens N idle long-wait requests against the gateway and reports its memory (ops/bench)."""
import asyncio, sys

async def waiter(port, path, ready):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    ready.append(1)
    try:
        await asyncio.wait_for(reader.read(100), timeout=120)
    except Exception:
        pass
    writer.close()

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

async def main():
    port, path, count, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    before = rss(pid)
    ready = []
    tasks = [asyncio.create_task(waiter(port, path, ready)) for _ in range(count)]
    while len(ready) < count:
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)
    after = rss(pid)
    print(f"gateway RSS: {before/1024:.1f} MiB idle, {after/1024:.1f} MiB with {count} parked long-waiters "
          f"({(after-before)*1024/count:.0f} bytes per waiter)")
    for task in tasks:
        task.cancel()

asyncio.run(main())
