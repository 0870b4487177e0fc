// The one script of mlmon's pages: every <time data-local> (rendered in UTC on the server) is
// rewritten into the viewer's time zone, to the second. Without it the page stays in UTC.
(function () {
  "use strict";
  var pad = function (n) { return String(n).padStart(2, "0"); };
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  document.querySelectorAll("time[data-local]").forEach(function (node) {
    var at = new Date(node.getAttribute("datetime"));
    if (isNaN(at.getTime())) { return; }
    node.title = node.textContent;
    node.textContent = at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + " " +
      pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds()) + (zone ? " " + zone : "");
  });
})();
