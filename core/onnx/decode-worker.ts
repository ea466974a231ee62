// The helper thread of prefetch.ts: decodes images and post-processes head outputs, replying in
// arrival order (HelperJobs: libvips decodes the next image while this thread resizes the
// current one). It only listens when the pool started it.
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { HelperJobs, type HelperRequest, WORKER_FLAG } from './prefetch';

const port = parentPort;
if (port && (workerData as Record<string, unknown> | null)?.[WORKER_FLAG] === true) {
  // libvips would otherwise decode with as many threads as cores, competing with onnxruntime.
  sharp.concurrency(1);
  sharp.cache(false); // every image is new: libvips' operation cache only costs memory
  const jobs = new HelperJobs((reply, job) => {
    const transfer: ArrayBuffer[] = [];
    if (reply.ok && reply.kind === 'decode') transfer.push(reply.tensor.buffer as ArrayBuffer);
    if (reply.ok && reply.kind === 'post') transfer.push(reply.packed.buffer as ArrayBuffer);
    port.postMessage({ ...reply, job }, transfer);
  });
  port.on('message', (msg: HelperRequest & { job: number }) => jobs.push(msg, msg.job));
  port.postMessage({ kind: 'ready' });
}
