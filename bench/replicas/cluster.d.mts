// Types of bench/replicas/cluster.mjs, for TypeScript callers (the multi-replica test).

export function findSystemBinary(name: string): string | undefined;

export interface ClusterRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL (a crash): clients see the connection drop. */
  kill(): Promise<void>;
  /** An empty server on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function startRedis(options: { maxSeconds: number }): Promise<ClusterRedis>;

export interface Replica {
  readonly url: string;
  readonly port: number;
  stop(graceMs?: number): Promise<void>;
}

export function startReplicas(options: {
  root: string;
  dir: string;
  config: Record<string, unknown> & { server?: Record<string, unknown> };
  env: Record<string, string>;
  count: number;
  maxSeconds: number;
}): Promise<Replica[]>;

export function startHaproxy(options: { dir: string; backends: readonly number[]; maxSeconds: number }): Promise<{ url: string; stop(): Promise<void> }>;
