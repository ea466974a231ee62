// The helper thread of prefetch.ts: decodes images and post-processes head outputs, one job at a
// time in arrival order (so it uses about one core). It only listens when the pool started it.
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { handleRequest, type HelperReply, type HelperRequest, WORKER_FLAG } from './prefetch';

const port = parentPort;
if (port && (workerData as Record<string, unknown> | null)?.[WORKER_FLAG] === true) {
  // libvips would otherwise decode with as many threads as cores, competing with onnxruntime.
  sharp.concurrency(1);
  sharp.cache(false); // every image is new: libvips' operation cache only costs memory
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (msg: HelperRequest & { job: number }) => {
    chain = chain.then(async () => {
      const reply: HelperReply & { job?: number } = await handleRequest(msg);
      reply.job = msg.job;
      const transfer: ArrayBuffer[] = [];
      if (reply.ok && reply.kind === 'decode') transfer.push(reply.tensor.buffer as ArrayBuffer);
      if (reply.ok && reply.kind === 'post') transfer.push(reply.packed.buffer as ArrayBuffer);
      port.postMessage(reply, transfer);
    });
  });
  port.postMessage({ kind: 'ready' });
}
