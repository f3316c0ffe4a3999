/** Terminal output for the CLI: who says what, with colour only on a terminal. */
import { styleText } from 'node:util';

export interface Out {
  write(text: string): unknown;
  isTTY?: boolean;
}

function style(out: Out, format: Parameters<typeof styleText>[0], text: string): string {
  return out.isTTY && typeof styleText === 'function' ? styleText(format, text) : text;
}

export function heading(out: Out, text: string): void {
  out.write(`\n${style(out, 'bold', `== ${text}`)}\n`);
}

/** One line said by one side: `[child 1234] Received: Hello, IPC`. */
export function say(out: Out, who: string, text: string): void {
  const colour = who.startsWith('parent') || who.startsWith('host') ? 'cyan' : 'yellow';
  out.write(`${style(out, colour, `[${who}]`)} ${text}\n`);
}
