// The admin console's report page: follow a background job without reloading the page.
// Without script the page reloads itself (<noscript> refresh) until the job has ended.
"use strict";
(function () {
  const box = document.getElementById("report-job");
  const bar = document.getElementById("job-progress");
  if (!box || !bar) { return; }
  const state = document.getElementById("job-state");
  const url = box.getAttribute("data-status");
  async function poll() {
    try {
      const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok) {
        const job = await answer.json();
        bar.value = job.progress;
        bar.textContent = job.progress + " %";
        state.textContent = job.state;
        if (job.end) { window.location.reload(); return; }
      }
    } catch (error) {
      // A network hiccup: try again on the next turn.
    }
    window.setTimeout(poll, 700);
  }
  window.setTimeout(poll, 300);
})();
