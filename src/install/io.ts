/**
 * Output for the one-shot modes. `-install` and `-probe-cli` must not die mid-run because whoever reads their stdout
 * went away (the reference ignores SIGPIPE there; Node ignores SIGPIPE already, but an EPIPE on process.stdout is an
 * 'error' event that would crash the process): the run finishes, and what could not be written is dropped.
 */
export function quietWriter(stream: NodeJS.WritableStream): (text: string) => void {
  stream.on('error', () => undefined);
  return (text) => {
    if (text !== '') stream.write(text);
  };
}
