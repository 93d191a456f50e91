// ConsoleAssets: the console's stylesheet and script, served from the binary (no CDN: the
// console works offline). The script refreshes the overview, draws throughput sparklines and
// asks for confirmation before an action.

enum ConsoleAssets {
    static let css = """
        :root { --fg: #1d2330; --muted: #667; --bad: #b3261e; --good: #1e7b34; --line: #dde; --bg: #f7f8fb; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #1d2330; color: #fff; }
        header a { color: #fff; text-decoration: none; } .brand { font-weight: 700; }
        nav { display: flex; gap: 1rem; align-items: center; flex: 1; } .who { color: #ccd; font-size: .9em; }
        .find input { padding: .25rem .5rem; border-radius: 4px; border: 0; min-width: 16rem; max-width: 60vw; }
        main { padding: 1rem; max-width: 1200px; margin: auto; }
        h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
        .scroll { overflow-x: auto; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { border-bottom: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.bad td { background: #fff4f3; }
        .problem, .bad { color: var(--bad); } .good { color: var(--good); }
        .summary { font-weight: 600; } .hint { color: var(--muted); }
        .error { font-family: ui-monospace, monospace; font-size: .85em; word-break: break-word; }
        pre { background: #fff; border: 1px solid var(--line); padding: .75rem; overflow-x: auto; }
        .count { background: #1d2330; color: #fff; border-radius: 1rem; padding: 0 .6rem; font-size: .9em; }
        form.inline { display: inline; } .filters { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0; }
        button { border: 1px solid #99a; background: #fff; border-radius: 4px; padding: .2rem .6rem; cursor: pointer; }
        button.replay { border-color: var(--good); color: var(--good); } button.danger { border-color: var(--bad); color: var(--bad); }
        .card { background: #fff; padding: 1rem; border: 1px solid var(--line); max-width: 28rem; display: grid; gap: .75rem; }
        .spark { width: 120px; height: 24px; vertical-align: middle; margin-left: .4rem; }
        .spark polyline { fill: none; stroke: #3558c9; stroke-width: 1.5; }
        .timeline { list-style: none; padding: 0; } .timeline li { background: #fff; border-left: 3px solid #3558c9; margin: .4rem 0; padding: .4rem .6rem; }
        .timeline .at { color: var(--muted); font-variant-numeric: tabular-nums; } .stream { color: var(--muted); font-size: .85em; }
        .outcome { display: inline-block; font-size: .85em; margin-right: .6rem; } .outcome.dead { color: var(--bad); } .outcome.handled { color: var(--good); }
        @media (max-width: 640px) { main { padding: .5rem; } th, td { padding: .25rem; font-size: .9em; } }
        """

    static let javascript = """
        "use strict";
        const history = {};
        function spark(svg, values) {
          const max = Math.max(1, ...values);
          const points = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * 120},${24 - (v / max) * 22 - 1}`).join(" ");
          svg.innerHTML = `<polyline points="${points}"></polyline>`;
        }
        function record() {
          document.querySelectorAll(".rate").forEach((el) => {
            const name = el.dataset.service;
            history[name] = (history[name] || []).concat([parseFloat(el.dataset.rate) || 0]).slice(-60);
          });
          document.querySelectorAll(".spark").forEach((svg) => spark(svg, history[svg.dataset.service] || [0]));
        }
        async function refresh(live) {
          try {
            const response = await fetch(live.dataset.refresh, { credentials: "same-origin" });
            if (response.ok) { live.innerHTML = await response.text(); record(); }
          } catch (error) { /* keep the last view; try again */ }
        }
        document.addEventListener("DOMContentLoaded", () => {
          const live = document.getElementById("live");
          if (live) { record(); setInterval(() => refresh(live), 3000); }
          document.querySelectorAll("form[data-confirm]").forEach((form) => {
            form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
          });
        });
        """
}
