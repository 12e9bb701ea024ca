// Per-process render counter: each time the cached function below runs, the number goes up, so a
// page showing a higher number than before was rendered from fresh data.
let runs = 0;

export function nextRun() {
  runs += 1;
  return runs;
}
