// Pay on an invoice's page with the provider's own script, as /app/invoices/{id}/pay chose it (paying.py): Razorpay's
// Standard Checkout (Checkout.js) or Stripe.js's card Element. The options come in a JSON data block (not a script:
// the page's Content-Security-Policy allows our files and the provider's script only). Both come back to the
// invoice's checkout-return page, which hands Razorpay's answer to the verify route and watches the invoice until
// the payment has settled it; Stripe's webhook settles a Stripe payment.
(function () {
  "use strict";
  var data = document.getElementById("checkout-options");
  if (!data) { return; }
  var options = JSON.parse(data.textContent);
  var button = document.getElementById("pay-now");
  var status = document.getElementById("paying-status");
  var error = document.getElementById("paying-error");

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
    var checkout = new window.Razorpay({
      key: options.key, order_id: options.order_id, amount: options.amount, currency: options.currency,
      name: options.name, description: options.description, prefill: options.prefill, notes: options.notes,
      handler: function (response) {
        say("Paid. Checking the payment…");
        back({razorpay_payment_id: response.razorpay_payment_id, razorpay_order_id: response.razorpay_order_id,
              razorpay_signature: response.razorpay_signature});
      },
      modal: {
        ondismiss: function () {
          button.disabled = false;
          say("The checkout was closed without paying. Pay when you are ready.");
        }
      }
    });
    // Razorpay keeps its checkout open after a decline, for another attempt; the page says what happened.
    checkout.on("payment.failed", function (response) {
      var reason = (response && response.error && response.error.description) || "it was declined";
      fail("The payment did not go through: " + reason + " Try again in the checkout, or another way.");
    });
    button.addEventListener("click", function () {
      button.disabled = true;
      say("Razorpay's checkout is open.");
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

  var provider = data.closest("[data-provider]").getAttribute("data-provider");
  if (provider === "stripe") { stripe(); } else if (provider === "razorpay") { razorpay(); }
})();
