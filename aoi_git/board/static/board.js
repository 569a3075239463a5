// aoi board: live updates. The server renders every page; this only listens to the
// branch's moves (server-sent events) and swaps in the freshly rendered <main>.
(() => {
  "use strict";
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  const commit = document.getElementById("commit");
  const feed = document.querySelector("#feed ol");
  let busy = false;
  let again = false;

  // a person typing an answer or feedback keeps their text: the page is not swapped
  const editing = () => [...main.querySelectorAll("textarea, input[type=text]")]
    .some((x) => x.value.trim() !== "" || x === document.activeElement);

  async function refresh() {
    if (busy) { again = true; return; }
    if (editing()) { live.classList.add("stale"); live.title = "changed: reload to see"; return; }
    busy = true;
    try {
      const r = await fetch(location.href, { headers: { "X-Board-Part": "main" }, cache: "no-store" });
      if (r.ok) {
        main.innerHTML = await r.text();
        const n = r.headers.get("X-Board-Inbox");
        const badge = document.getElementById("inbox-count");
        if (badge && n !== null) badge.textContent = n;
        live.classList.remove("stale");
        document.dispatchEvent(new CustomEvent("board:updated"));
      }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  function note(t) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "/task/" + encodeURIComponent(t.task);
    a.textContent = t.task;
    li.append(a, " " + t.move + " ", Object.assign(document.createElement("span"),
      { className: "muted", textContent: t.actor }));
    feed.prepend(li);
    while (feed.children.length > 30) feed.lastChild.remove();
  }

  // elapsed times of running agents tick on the page between commits
  const duration = (s) => s < 60 ? `${s}s` : s < 3600
    ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`
    : `${Math.floor(s / 3600)}h ${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
  setInterval(() => {
    for (const td of main.querySelectorAll("[data-started]")) {
      td.textContent = duration(Math.max(0, Math.floor(Date.now() / 1000 - td.dataset.started)));
    }
  }, 1000);

  const since = encodeURIComponent(main.dataset.commit || "");
  const es = new EventSource("/events?since=" + since);
  es.addEventListener("open", () => live.classList.add("on"));
  es.addEventListener("error", () => live.classList.remove("on"));
  es.addEventListener("commit", (ev) => {
    const msg = JSON.parse(ev.data);
    main.dataset.commit = msg.commit || "";
    commit.textContent = (msg.commit || "").slice(0, 10);
    (msg.transitions || []).forEach(note);
    refresh();
  });
})();
