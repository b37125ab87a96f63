// Keyboard and screen-reader help for public forms (no other script runs on public pages).
// An error summary or a lookup answer takes focus when the page loads, so people start there;
// a link in the error summary moves focus to its field (browsers would only scroll to it).
document.addEventListener("DOMContentLoaded", function () {
  var first = document.querySelector("#error-summary, #lookup-result");
  if (first) {
    first.focus();
  }
  var links = document.querySelectorAll("#error-summary a[href^='#']");
  Array.prototype.forEach.call(links, function (link) {
    link.addEventListener("click", function (event) {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) {
        return;
      }
      // Radio and checkbox groups carry the id on the list: focus its first choice.
      var field = target.matches("input, select, textarea, button")
        ? target
        : target.querySelector("input, select, textarea");
      event.preventDefault();
      var group = document.getElementById((field || target).id.replace(/-\d+$/, "") + "-group");
      (group || target).scrollIntoView();
      (field || target).focus({ preventScroll: true });
    });
  });
});
