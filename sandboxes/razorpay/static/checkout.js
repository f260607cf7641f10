/*
 * The Razorpay sandbox's Checkout.js: the public API of https://checkout.razorpay.com/v1/checkout.js, so a
 * merchant page's own code runs unchanged against the sandbox (docs/razorpay-sandbox.md, "Checkout.js").
 *
 *   var rzp = new Razorpay({key, order_id, amount, currency, name, description, image, prefill, notes, theme,
 *                           customer_id, recurring, handler, modal: {ondismiss, escape, confirm_close},
 *                           callback_url, redirect});
 *   rzp.on("payment.failed", function (response) { response.error.code, .description, .source, .step,
 *                                                  .reason, .metadata.order_id, .metadata.payment_id });
 *   rzp.open();   // the sandbox's checkout page for the order, in a modal frame over the merchant's page
 *   rzp.close();
 *
 * A successful payment closes the modal and calls handler({razorpay_payment_id, razorpay_order_id,
 * razorpay_signature}), the signature being the hex HMAC-SHA256 of "order_id|payment_id" with the key secret,
 * as Razorpay's. A declined one emits "payment.failed" and leaves the modal open for another attempt, as
 * Razorpay's does. Closing it (its close button or Escape) calls modal.ondismiss. With callback_url and
 * redirect: true, the page itself goes to the sandbox's checkout, which posts the fields to callback_url.
 *
 * Recurring payments: an authorisation order (one made with a token: a mandate) opens only with recurring "1" and
 * the order's customer_id, as Razorpay's; paying it registers the mandate (token.confirmed follows) and calls the
 * handler with the same three fields.
 *
 * The frame talks to this script with postMessage: only to the merchant's origin, and only messages from the
 * sandbox's own origin and frame are believed.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var SANDBOX = script && script.src ? new URL(script.src, window.location.href).origin : "";
  var SOURCE = "razorpay-sandbox";

  function Razorpay(options) {
    if (!(this instanceof Razorpay)) {
      return new Razorpay(options);
    }
    options = options || {};
    if (!options.key) {
      throw new Error("No key passed");
    }
    if (options.order_id !== undefined && typeof options.order_id !== "string") {
      throw new Error("order_id must be a string");
    }
    this.options = options;
    this._events = {};
    this._overlay = null;
    this._frame = null;
    this._previousFocus = null;
    this._listener = null;
    this._keys = null;
  }

  Razorpay.prototype.on = function (event, callback) {
    if (typeof callback === "function") {
      (this._events[event] = this._events[event] || []).push(callback);
    }
    return this;
  };

  Razorpay.prototype._emit = function (event, payload) {
    (this._events[event] || []).forEach(function (callback) { callback(payload); });
  };

  Razorpay.prototype._url = function (embedded) {
    var o = this.options;
    var prefill = o.prefill || {};
    var query = new URLSearchParams();
    query.set("key", o.key);
    if (embedded) {
      query.set("embedded", "1");
      query.set("origin", window.location.origin);
    }
    [["name", o.name], ["description", o.description], ["amount", o.amount], ["currency", o.currency],
     ["prefill[name]", prefill.name], ["prefill[email]", prefill.email], ["prefill[contact]", prefill.contact],
     ["customer_id", o.customer_id], ["recurring", o.recurring]]
      .forEach(function (pair) {
        if (pair[1] !== undefined && pair[1] !== null && pair[1] !== "") { query.set(pair[0], String(pair[1])); }
      });
    if (!embedded && o.callback_url) {
      query.set("callback_url", o.callback_url);
      query.set("callback_method", "post");
    }
    return SANDBOX + "/checkout/" + encodeURIComponent(o.order_id || "") + "?" + query.toString();
  };

  Razorpay.prototype.open = function () {
    if (this._overlay) {
      return this;
    }
    if (this.options.callback_url && this.options.redirect) {
      window.location.assign(this._url(false));
      return this;
    }
    var self = this;
    var overlay = document.createElement("div");
    overlay.className = "razorpay-container";
    // Styled through the DOM, not a style attribute or sheet, so the merchant's CSP needs no style exception.
    Object.assign(overlay.style, {
      position: "fixed", top: "0", right: "0", bottom: "0", left: "0", zIndex: "2147483647",
      background: "rgba(0, 0, 0, 0.6)", display: "flex", alignItems: "center", justifyContent: "center"
    });
    var frame = document.createElement("iframe");
    frame.className = "razorpay-checkout-frame";
    frame.title = "Razorpay Checkout";
    frame.name = "razorpay-checkout-frame";
    frame.src = this._url(true);
    Object.assign(frame.style, {
      width: "min(26rem, 100vw)", height: "min(42rem, 100vh)", border: "0", borderRadius: "10px",
      background: "#fff"
    });
    overlay.appendChild(frame);
    this._listener = function (event) { self._message(event); };
    this._keys = function (event) {
      if (event.key === "Escape") { self._dismiss(true); }
    };
    window.addEventListener("message", this._listener);
    document.addEventListener("keydown", this._keys);
    this._previousFocus = document.activeElement;
    this._overlay = overlay;
    this._frame = frame;
    document.body.appendChild(overlay);
    frame.focus();
    return this;
  };

  Razorpay.prototype._message = function (event) {
    if (!this._frame || event.origin !== SANDBOX || event.source !== this._frame.contentWindow) {
      return;
    }
    var data = event.data || {};
    if (data.source !== SOURCE) {
      return;
    }
    if (data.event === "payment.success") {
      this.close();
      if (typeof this.options.handler === "function") {
        this.options.handler(data.response);
      }
    } else if (data.event === "payment.failed") {
      this._emit("payment.failed", {error: data.error});
    } else if (data.event === "dismiss") {
      this._dismiss(data.via === "escape");
    }
  };

  // Closed by the person (the close button, or Escape unless modal.escape is false): modal.ondismiss.
  Razorpay.prototype._dismiss = function (byEscape) {
    var modal = this.options.modal || {};
    if (!this._overlay || (byEscape && modal.escape === false)) {
      return;
    }
    if (modal.confirm_close && !window.confirm("Are you sure you want to close the form?")) {
      return;
    }
    this.close();
    if (typeof modal.ondismiss === "function") {
      modal.ondismiss();
    }
  };

  Razorpay.prototype.close = function () {
    if (!this._overlay) {
      return;
    }
    window.removeEventListener("message", this._listener);
    document.removeEventListener("keydown", this._keys);
    this._overlay.remove();
    this._overlay = this._frame = null;
    if (this._previousFocus && typeof this._previousFocus.focus === "function") {
      this._previousFocus.focus();
    }
  };

  window.Razorpay = Razorpay;
})();
