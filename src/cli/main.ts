#!/usr/bin/env node
/** The `interprocess` command. */
import { readFileSync } from 'node:fs';
import { Command, Argument, CommanderError } from 'commander';
import { mechanisms, runDemo, type Mechanism } from './demo.js';
import { runPeer } from './demo-peer.js';
import { registerObjectCommands } from './objects-cmd.js';
import { registerTopCommand } from './top.js';
import { registerShmSemCommands } from './verbs-shm-sem.js';
import { registerQueueCommands } from './verbs-queue.js';
import { registerBench } from './bench.js';
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

program
  .command('demo')
  .description('walk through the classic IPC tutorial between real processes')
  .addArgument(new Argument('[mechanism...]', 'which walkthroughs to run (default: all)').choices(mechanisms))
  .action(async (which: Mechanism[]) => {
    await runDemo(which, process.stdout);
  });

registerObjectCommands(program);
registerTopCommand(program);
registerShmSemCommands(program);
registerQueueCommands(program);
registerBench(program);

program
  .command('demo-peer', { hidden: true })
  .argument('<role>')
  .argument('[args...]')
  .action(async (role: string, args: string[]) => {
    await runPeer(role, args, process.stdout);
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`interprocess: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = err instanceof CliError ? err.exitCode : exitCodeOf(err);
});
