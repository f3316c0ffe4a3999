#!/usr/bin/env node
/** The `interprocess` command. */
import { readFileSync } from 'node:fs';
import { Command, Argument, CommanderError } from 'commander';
import { CliError, Exit, exitCodeOf, exitCodesHelp } from './target.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('interprocess')
  .description('Inter-process communication for Node.js: pipes, FIFOs, shared memory and more.')
  .version(pkg.version)
  // Usage errors read like the others: one line, `interprocess: ...`, and where to look.
  .showHelpAfterError(false)
  .configureOutput({ outputError: (text, write) => write(`interprocess: ${text.replace(/^error: /, '').trim()} (see --help)\n`) })
  .addHelpText('after', exitCodesHelp)
  // Commander exits 1 on a bad command line; shells (and ipcs users) expect 2 for usage errors.
  // Set before the subcommands are added: they inherit it.
  .exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? 0 : Exit.usage);
  });

type Register = (program: Command) => void;

/**
 * Each command's module, with the libraries it needs (tables, progress bars, the
 * demos), is loaded only when that command runs, so that a verb in a shell loop
 * starts without the others; the full help, or an unknown command, loads them all.
 */
const commands: Array<[names: string[], load: () => Promise<Register>]> = [
  [
    ['demo'],
    async () => {
      const { mechanisms, runDemo } = await import('./demo.js');
      return (p) =>
        p
          .command('demo')
          .description('walk through the classic IPC tutorial between real processes')
          .addArgument(new Argument('[mechanism...]', 'which walkthroughs to run (default: all)').choices(mechanisms))
          .action(async (which: Parameters<typeof runDemo>[0]) => {
            await runDemo(which, process.stdout);
          });
    },
  ],
  [['ls', 'rm', 'clean'], async () => (await import('./objects-cmd.js')).registerObjectCommands],
  [['top'], async () => (await import('./top.js')).registerTopCommand],
  [['shm', 'sem'], async () => (await import('./verbs-shm-sem.js')).registerShmSemCommands],
  [['queue', 'channel'], async () => (await import('./verbs-queue.js')).registerQueueCommands],
  [['bench'], async () => (await import('./bench.js')).registerBench],
  [
    ['demo-peer'],
    async () => {
      const { runPeer } = await import('./demo-peer.js');
      return (p) =>
        p
          .command('demo-peer', { hidden: true })
          .argument('<role>')
          .argument('[args...]')
          .action(async (role: string, args: string[]) => {
            await runPeer(role, args, process.stdout);
          });
    },
  ],
];

// A reader that went away (`interprocess ls | head`): end quietly, as Unix tools do. Commands
// that must clean up (demo) or report a message lost on the way out (recv) listen themselves.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (process.stdout.listenerCount('error') > 1) return;
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const first = process.argv.slice(2).find((a) => !a.startsWith('-'));
const named = commands.filter(([names]) => first !== undefined && names.includes(first));
for (const [, load] of named.length ? named : commands) (await load())(program);

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`interprocess: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = err instanceof CliError ? err.exitCode : exitCodeOf(err);
});
