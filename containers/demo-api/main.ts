/**
 * Entry of the fleet demo's container image (bundled with esbuild at synth, see
 * lib/fleet-demo-stack.ts): reads the environment, starts the server, and stops it on SIGTERM.
 *
 * ECS sends SIGTERM once the load balancer has deregistered the task (after the target group's
 * deregistration delay), then SIGKILL after the container's stop timeout: closing at once is
 * right, no client is routed here any more.
 */
import { readContainerConfig, startContainerServer } from './server';

async function main(): Promise<void> {
  const config = readContainerConfig(process.env);
  const server = await startContainerServer(config);
  console.log(JSON.stringify({ message: 'listening', port: server.port, version: config.version, faults: config.faults }));
  const stop = (signal: string) => {
    console.log(JSON.stringify({ message: 'stopping', signal, stats: server.stats() }));
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(JSON.stringify({ message: 'close failed', error: String(error) }));
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ message: 'failed to start', error: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
