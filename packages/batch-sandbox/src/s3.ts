import type http from 'node:http';
import { buildApp } from 'fauxqs';
import { type ListeningServer, listenOn } from './http.js';

export type S3App = ReturnType<typeof buildApp>;

export interface S3Server {
  /** The port on each address, in the order given. */
  readonly ports: number[];
  close(): Promise<void>;
}

/**
 * A real S3 protocol server (fauxqs, in memory) with the bucket made, behind `front` (which
 * checks every request before handing it to fauxqs's router): a node:http server per address,
 * so the host and the jobs reach it without a forwarder.
 */
export async function startS3(
  hosts: string[],
  bucket: string,
  region: string,
  front: (app: S3App) => http.RequestListener,
): Promise<S3Server> {
  const app = buildApp({ logger: false, defaultRegion: region });
  await app.ready();
  const created = await app.inject({ method: 'PUT', url: `/${bucket}` });
  if (created.statusCode !== 200) {
    await app.close();
    throw new Error(`S3 refused bucket ${bucket}: ${created.body.slice(0, 200)}`);
  }
  let listening: ListeningServer;
  try {
    listening = await listenOn(hosts, front(app));
  } catch (error) {
    await app.close();
    throw error;
  }
  return {
    ports: listening.ports,
    close: async () => {
      await listening.close();
      await app.close();
    },
  };
}
