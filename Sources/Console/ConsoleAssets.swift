// ConsoleAssets: the console's stylesheet and script, served from the binary (no CDN: the
// console works offline). The script refreshes the overview (keeping the map's scroll position
// and folding), folds long results and asks for confirmation before an action; every chart and
// the map are drawn on the server.

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
        .spark polyline { fill: none; stroke: #3558c9; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
        .timeline { list-style: none; padding: 0; } .timeline li { background: #fff; border-left: 3px solid #3558c9; margin: .4rem 0; padding: .4rem .6rem; }
        .timeline .at { color: var(--muted); font-variant-numeric: tabular-nums; } .stream { color: var(--muted); font-size: .85em; }
        .outcome { display: inline-block; font-size: .85em; margin-right: .6rem; } .outcome.dead { color: var(--bad); } .outcome.handled { color: var(--good); }
        .chart { background: #fff; border: 1px solid var(--line); padding: .3rem .5rem; }
        .throughput { width: 100%; height: auto; display: block; }
        .throughput .grid { stroke: var(--line); stroke-width: 1; } .axis { fill: var(--muted); font-size: 11px; }
        .series { fill: none; stroke-width: 1.8; } circle.series { stroke: none; }
        .legends { margin: .2rem 0 0; font-size: .85em; } .legend { margin-right: .8rem; white-space: nowrap; }
        .legend::before { content: ""; display: inline-block; width: .8em; height: .25em; margin-right: .3em; vertical-align: middle; background: currentColor; }
        .c0 { stroke: #3558c9; color: #3558c9; } circle.c0 { fill: #3558c9; } .c1 { stroke: #1e7b34; color: #1e7b34; } circle.c1 { fill: #1e7b34; }
        .c2 { stroke: #b26a00; color: #b26a00; } circle.c2 { fill: #b26a00; } .c3 { stroke: #8e24aa; color: #8e24aa; } circle.c3 { fill: #8e24aa; }
        .c4 { stroke: #00838f; color: #00838f; } circle.c4 { fill: #00838f; } .c5 { stroke: #c2185b; color: #c2185b; } circle.c5 { fill: #c2185b; }
        .c6 { stroke: #5d4037; color: #5d4037; } circle.c6 { fill: #5d4037; } .c7 { stroke: #546e7a; color: #546e7a; } circle.c7 { fill: #546e7a; }
        details.map { margin-top: 1rem; } details.map summary { font-weight: 600; cursor: pointer; }
        .map-scroll { overflow: auto; max-height: 70vh; background: #fff; border: 1px solid var(--line); margin-top: .4rem; }
        svg.map { display: block; font-size: 12px; }
        .map .heading { fill: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .04em; }
        .map .node rect { fill: #fff; stroke: #99a; stroke-width: 1; }
        .map .node.stream rect { fill: #eef2fb; stroke: #8ea2d8; } .map .node.writer rect { fill: #f4f4f6; }
        .map .node.service rect { stroke: #1d2330; stroke-width: 1.4; }
        .map .node.service.bad rect { fill: #fff4f3; stroke: var(--bad); stroke-width: 2.2; }
        .map .name { font-weight: 600; } .map .numbers { fill: var(--muted); font-size: 11px; }
        .map .dead { fill: var(--muted); font-size: 11px; text-decoration: underline; } .map .dead.bad, .map .flag { fill: var(--bad); font-weight: 600; }
        .map .flag { font-size: 11px; }
        .map .edge { fill: none; stroke: #8ea2d8; opacity: .85; } .map .edge.bad { stroke: var(--bad); opacity: 1; }
        .map .label { font-size: 10.5px; fill: #334; paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
        .map .label.bad { fill: var(--bad); font-weight: 600; }
        .waterfall-scroll { overflow-x: auto; background: #fff; border: 1px solid var(--line); }
        svg.waterfall { display: block; font-size: 12px; }
        .waterfall .row-label { font-weight: 600; } .waterfall .row-sub { fill: var(--muted); font-size: 11px; }
        .waterfall .track { fill: #f1f2f6; } .waterfall .span { fill: #8ea2d8; } .waterfall .hop { fill: #3558c9; }
        .waterfall .hop.dead, .waterfall .hop.failed { fill: var(--bad); } .waterfall .hop.slowest { fill: #b26a00; }
        .waterfall .hop-label { font-size: 10.5px; fill: #334; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
        .waterfall .tick { stroke: var(--line); } .waterfall .axis { fill: var(--muted); font-size: 11px; }
        pre.wrap { white-space: pre-wrap; word-break: break-word; max-height: 24rem; overflow: auto; }
        details.fold summary { cursor: pointer; color: var(--muted); }
        @media (max-width: 640px) { main { padding: .5rem; } th, td { padding: .25rem; font-size: .9em; } }
        """

    static let javascript = """
        "use strict";
        async function refresh(live) {
          try {
            const response = await fetch(live.dataset.refresh, { credentials: "same-origin" });
            if (!response.ok) return;
            const html = await response.text();
            // Keep what the reader did to the map: its folding and where it was scrolled.
            const details = live.querySelector("details.map");
            const scroller = live.querySelector(".map-scroll");
            const open = details ? details.open : true;
            const top = scroller ? scroller.scrollTop : 0;
            const left = scroller ? scroller.scrollLeft : 0;
            live.innerHTML = html;
            const newDetails = live.querySelector("details.map");
            const newScroller = live.querySelector(".map-scroll");
            if (newDetails) newDetails.open = open;
            if (newScroller) { newScroller.scrollTop = top; newScroller.scrollLeft = left; }
          } catch (error) { /* keep the last view; try again */ }
        }
        document.addEventListener("DOMContentLoaded", () => {
          const live = document.getElementById("live");
          if (live) { setInterval(() => refresh(live), 3000); }
          document.querySelectorAll("form[data-confirm]").forEach((form) => {
            form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
          });
        });
        """
}
