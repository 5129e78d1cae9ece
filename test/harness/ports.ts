import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port by listening on port 0 and closing again.
 * There is a small race (someone else may grab the port before we reuse it), which is acceptable
 * for loopback test processes; docker-registry needs a concrete port in its config file.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`could not read the port of a listening socket on ${host}`));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
