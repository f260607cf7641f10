// Pay on an invoice's page with the provider's own script, as /app/invoices/{id}/pay chose it (paying.py): Razorpay's
// Standard Checkout (Checkout.js) or Stripe.js's card Element; or authorise a mandate on the auto-debit page with
// Razorpay's Checkout (recurring "1", as /app/auto-debit/{id}/authorise chose it, auto_debit.py). The options come
// in a JSON data block (not a script: the page's Content-Security-Policy allows our files and the provider's script
// only). Each comes back to its page's return route: an invoice's checkout-return hands Razorpay's answer to the
// verify route and watches the invoice until the payment has settled it (Stripe's webhook settles a Stripe
// payment); the auto-debit page's watches the mandate until the bank's token.confirmed has confirmed it.
(function () {
  "use strict";
  var data = document.getElementById("checkout-options");
  if (!data) { return; }
  var options = JSON.parse(data.textContent);
  var section = data.closest("[data-provider]");
  var button = document.getElementById("pay-now");
  var status = document.getElementById("paying-status");
  var error = document.getElementById("paying-error");
  // What the page says around Razorpay's checkout, by what it is open for (the section's data-purpose).
  var WORDS = {
    payment: {
      open: "Razorpay's checkout is open.",
      done: "Paid. Checking the payment…",
      dismissed: "The checkout was closed without paying. Pay when you are ready.",
      failed: "The payment did not go through: ",
      again: " Try again in the checkout, or another way."
    },
    mandate: {
      open: "Razorpay's checkout is open: authorise the mandate at your bank.",
      done: "Authorised. Waiting for your bank's confirmation…",
      dismissed: "The checkout was closed before the mandate was authorised. Authorise it when you are ready.",
      failed: "The authorisation did not go through: ",
      again: " Try again in the checkout, or set up auto-debit with another method."
    }
  };
  var words = WORDS[section.getAttribute("data-purpose")] || WORDS.payment;

  function say(text) { status.textContent = text; }
  function fail(text) { error.textContent = text; }
  function back(params) {
    window.location.assign(options.return_url + "?" + new URLSearchParams(params).toString());
  }

  function razorpay() {
    if (typeof window.Razorpay !== "function") {
      say("");
      fail("Razorpay's checkout could not be loaded. Try again in a minute, or ask for a payment link.");
      return;
    }
    // Checkout's options as the server made them (an invoice's order; or a mandate's authorisation order with its
    // customer_id and recurring "1"), with the page's handler and modal.
    var settings = {};
    Object.keys(options).forEach(function (name) {
      if (name !== "return_url") { settings[name] = options[name]; }
    });
    // The handler's answer decides nothing by itself: the return route verifies it (an invoice's payment) or
    // watches for the bank's token.confirmed (a mandate).
    settings.handler = function (response) {
      say(words.done);
      back({razorpay_payment_id: response.razorpay_payment_id, razorpay_order_id: response.razorpay_order_id,
            razorpay_signature: response.razorpay_signature});
    };
    settings.modal = {
      ondismiss: function () {
        button.disabled = false;
        say(words.dismissed);
      }
    };
    var checkout = new window.Razorpay(settings);
    // Razorpay keeps its checkout open after a decline, for another attempt; the page says what happened.
    checkout.on("payment.failed", function (response) {
      var reason = (response && response.error && response.error.description) || "it was declined";
      fail(words.failed + reason + words.again);
    });
    button.addEventListener("click", function () {
      button.disabled = true;
      say(words.open);
      fail("");
      checkout.open();
    });
    button.disabled = false;
    button.click();  // the person asked to pay: open the checkout at once
  }

  function stripe() {
    if (typeof window.Stripe !== "function") {
      say("");
      fail("Stripe could not be loaded. Try again in a minute.");
      return;
    }
    var client = window.Stripe(options.key);
    var card = client.elements().create("card");
    card.mount("#card-element");
    document.getElementById("card-form").addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      fail("");
      say("Confirming the payment with Stripe…");
      client.confirmCardPayment(options.client_secret, {
        payment_method: {card: card, billing_details: options.billing_details}
      }).then(function (result) {
        if (result.error) {
          button.disabled = false;
          say("");
          fail("The payment did not go through: " + (result.error.message || "the card was declined."));
          return;
        }
        var intent = result.paymentIntent;
        // Stripe's return parameters, as its return_url would get them.
        var state = intent.status === "succeeded" || intent.status === "processing" ? intent.status : "failed";
        back({payment_intent: intent.id, redirect_status: state});
      });
    });
    button.disabled = false;
    say("Enter the card, then pay.");
  }

  var provider = section.getAttribute("data-provider");
  if (provider === "stripe") { stripe(); } else if (provider === "razorpay") { razorpay(); }
})();
