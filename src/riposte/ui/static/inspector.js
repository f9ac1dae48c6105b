// Riposte web inspector. htmx (vendored) polls a running response's timeline when its events are
// not stored; when they are (stream=true or background), this follows them as server-sent events,
// showing the text as it streams, and renders the timeline anew once the response has ended.
(function () {
  var TERMINAL = ["response.completed", "response.failed", "response.incomplete", "response.cancelled"];

  function refresh(root, delay) {
    window.setTimeout(function () {
      htmx.ajax("GET", root.getAttribute("data-live"), { target: "#timeline-body", swap: "outerHTML" });
    }, delay);
  }

  function follow(root) {
    if (!root || !root.getAttribute("data-events") || root.riposteFollowing) { return; }
    root.riposteFollowing = true;
    var text = document.getElementById("streaming-text");
    var source = new EventSource(root.getAttribute("data-events"));
    function append(message) {
      var event = JSON.parse(message.data);
      if (text && typeof event.delta === "string") { text.textContent += event.delta; }
    }
    source.addEventListener("response.output_text.delta", append);
    source.addEventListener("response.refusal.delta", append);
    TERMINAL.forEach(function (type) {
      source.addEventListener(type, function () { source.close(); refresh(root, 0); });
    });
    // The stream broke off before its end: render the timeline again (which follows anew) shortly.
    source.onerror = function () { source.close(); refresh(root, 1000); };
  }

  // Keep keyboard focus where it was when a fragment replaces the timeline body.
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    window.riposteFocus = active && active.id ? active.id : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (window.riposteFocus) {
      var again = document.getElementById(window.riposteFocus);
      if (again) { again.focus(); }
    }
    follow(document.getElementById("timeline-body"));
  });
  document.addEventListener("DOMContentLoaded", function () { follow(document.getElementById("timeline-body")); });
})();
