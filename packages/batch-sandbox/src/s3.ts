import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { buildApp } from 'fauxqs';
import { type ListeningServer, listenOn } from './http.js';

export interface S3Server {
  /** The port on each address, in the order given. */
  readonly ports: number[];
  /**
   * Reads (GET, HEAD) of keys that match are refused with S3's 403 AccessDenied, as IAM refuses a
   * caller without s3:GetObject, or a missing object to one without s3:ListBucket. Until undone.
   */
  denyReads(keys: RegExp): () => void;
  close(): Promise<void>;
}

/**
 * A real S3 protocol server (fauxqs, in memory) with the bucket made. Its router serves a
 * node:http server per address, so the host and the jobs reach it without a forwarder.
 */
export async function startS3(hosts: string[], bucket: string, region: string): Promise<S3Server> {
  const app = buildApp({ logger: false, defaultRegion: region });
  await app.ready();
  const created = await app.inject({ method: 'PUT', url: `/${bucket}` });
  if (created.statusCode !== 200) {
    await app.close();
    throw new Error(`S3 refused bucket ${bucket}: ${created.body.slice(0, 200)}`);
  }
  const denied = new Set<RegExp>();
  let listening: ListeningServer;
  try {
    listening = await listenOn(hosts, (req, res) => {
      const key = decodeURIComponent(new URL(req.url ?? '/', 'http://s3').pathname).replace(
        `/${bucket}/`,
        '',
      );
      const read = req.method === 'GET' || req.method === 'HEAD';
      if (read && [...denied].some((keys) => keys.test(key))) return accessDenied(res, req.method);
      return app.routing(req, res);
    });
  } catch (error) {
    await app.close();
    throw error;
  }
  return {
    ports: listening.ports,
    denyReads: (keys) => {
      denied.add(keys);
      return () => {
        denied.delete(keys);
      };
    },
    close: async () => {
      await listening.close();
      await app.close();
    },
  };
}

/** S3's refusal: 403 with an XML error body (none for HEAD), as the SDK parses it. */
function accessDenied(res: http.ServerResponse, method: string | undefined): void {
  const body =
    method === 'HEAD'
      ? ''
      : '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';
  res.writeHead(403, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': randomUUID(),
  });
  res.end(body);
}
