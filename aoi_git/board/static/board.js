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
