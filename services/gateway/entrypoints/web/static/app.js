// The dashboard's own script (no inline scripts: the pages' Content-Security-Policy allows only files from here).
// A refused htmx request (400, 403, 409, 429...) answers a short error fragment: show it where the form says
// (data-error-target), instead of dropping it as htmx does by default.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status < 400) { return; }
  var source = event.detail.requestConfig && event.detail.requestConfig.elt;
  var form = source && source.closest ? source.closest("[data-error-target]") : null;
  if (!form) { return; }
  var target = document.querySelector(form.getAttribute("data-error-target"));
  if (!target) { return; }
  event.detail.shouldSwap = true;
  event.detail.isError = false;
  event.detail.target = target;
  event.detail.swapOverride = "innerHTML";
});
// A successful start clears the previous error.
document.addEventListener("htmx:afterRequest", function (event) {
  var source = event.detail.elt;
  var form = source && source.closest ? source.closest("[data-error-target]") : null;
  if (form && event.detail.successful) {
    var target = document.querySelector(form.getAttribute("data-error-target"));
    if (target) { target.innerHTML = ""; }
  }
});
