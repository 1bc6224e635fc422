# The seed file system workload (BENCH.md), run inside a function: for each size,
# read a file and write its content back as a new file, alternating between the
# function's mount of the shared file system and its own /tmp; then 30-byte JSON
# reads and writes. Returns the samples in milliseconds.
import json, os, time

SIZES = [1 << 10, 100 << 10, 1 << 20, 10 << 20, 100 << 20, 400 << 20]


def _roundtrip(src, dst):
    t = time.perf_counter()
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data)
    return (time.perf_counter() - t) * 1e3


def handler(event, context):
    dirs = event['dirs']
    rounds = event['rounds']
    sizes = [s for s in SIZES if s <= event.get('max_size', SIZES[-1])]
    out = {'sizes': {}, 'json_read': {d: [] for d in dirs}, 'json_write': {d: [] for d in dirs}}
    for size, n in zip(sizes, rounds):
        block = os.urandom(1 << 20)
        samples = {d: [] for d in dirs}
        for d in dirs:
            with open(os.path.join(d, 'src'), 'wb') as f:
                left = size
                while left:
                    f.write(block[:min(left, len(block))])
                    left -= min(left, len(block))
        for i in range(n):
            for d in (dirs if i % 2 == 0 else dirs[::-1]):
                samples[d].append(_roundtrip(os.path.join(d, 'src'), os.path.join(d, 'copy%d' % i)))
                os.unlink(os.path.join(d, 'copy%d' % i))
        for d in dirs:
            os.unlink(os.path.join(d, 'src'))
        out['sizes'][str(size)] = samples
    doc = json.dumps({'hello': 'world!!'}).encode()[:30].ljust(30)
    for d in dirs:
        with open(os.path.join(d, 'small.json'), 'wb') as f:
            f.write(doc)
    for i in range(event['json_rounds']):
        for d in (dirs if i % 2 == 0 else dirs[::-1]):
            p = os.path.join(d, 'small.json')
            t = time.perf_counter()
            with open(p, 'rb') as f:
                f.read()
            out['json_read'][d].append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            with open(p, 'wb') as f:
                f.write(doc)
            out['json_write'][d].append((time.perf_counter() - t) * 1e3)
    return out
