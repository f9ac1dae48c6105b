// Riposte web inspector: htmx (vendored) does the live updates; this only keeps the page's
// keyboard focus where it was when a live fragment replaces the timeline body.
document.addEventListener("htmx:beforeSwap", function () {
  var active = document.activeElement;
  window.__riposteFocus = active && active.id ? active.id : null;
});
document.addEventListener("htmx:afterSwap", function () {
  if (window.__riposteFocus) {
    var again = document.getElementById(window.__riposteFocus);
    if (again) { again.focus(); }
  }
});
