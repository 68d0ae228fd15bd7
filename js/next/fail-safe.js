// Tracing must never break the app it traces: every step the package takes runs through one
// of these runners.

/**
 * A runner of tracing steps: `run(step)` returns what `step()` returns, or undefined if it
 * threw. The error is counted (`run.errors`) and the first one is logged, saying that `what`
 * failed; none is thrown into the app.
 */
export function failSafe(what) {
  const run = (step) => {
    try {
      return step();
    } catch (error) {
      run.errors += 1;
      if (run.errors === 1) console.warn(`@nextrace/next: ${what} failed and was skipped: ${error}`);
      return undefined;
    }
  };
  run.errors = 0;
  return run;
}
