
/*
 * Added by our local Stripe (sandboxes/stripe/stripe_js.js, appended to localstripe's Stripe.js above and served
 * with it at /js.stripe.com/v3/): confirmCardPayment as Stripe.js does it, so a page's production code confirms a
 * PaymentIntent against the local Stripe exactly as against js.stripe.com.
 *
 * - Stripe(key) takes a publishable key only (Stripe.js refuses anything else).
 * - confirmCardPayment(clientSecret, {payment_method: {card: cardElement, billing_details}}) (or a pm_... id)
 *   posts the card to POST /v1/payment_intents/{id}/confirm with the publishable key and the client secret, as
 *   Stripe.js does; localstripe's own only authenticated an intent its server had already confirmed. An intent
 *   that needs 3D Secure (4000 0025 0000 3155) asks in localstripe's dialog; a declined card
 *   (4000 0000 0000 0341) resolves {error} with Stripe's card_error and the intent waits for another card.
 * - The card Element's inputs are labelled (aria-label, autocomplete), as Stripe's own frame labels them.
 */
(function () {
  const makeLocalStripe = Stripe;
  const FIELDS = {
    number: ["Card number", "cc-number"],
    exp_month: ["Expiry month (MM)", "cc-exp-month"],
    exp_year: ["Expiry year (YY)", "cc-exp-year"],
    cvc: ["Security code (CVC)", "cc-csc"],
    postal_code: ["Postal code", "postal-code"],
  };

  function labelled(element) {
    const mount = element.mount.bind(element);
    element.mount = function (target) {
      mount(target);
      Object.keys(FIELDS).forEach(function (field) {
        const input = element._inputs && element._inputs[field];
        if (input) {
          input.setAttribute("aria-label", FIELDS[field][0]);
          input.setAttribute("autocomplete", FIELDS[field][1]);
          if (field !== "postal_code") { input.setAttribute("inputmode", "numeric"); }
        }
      });
    };
    return element;
  }

  async function answer(response) {
    const body = await response.json().catch(() => ({}));
    if (response.ok && !body.error) { return {intent: body}; }
    const error = Object.assign({message: "The payment could not be confirmed."}, body.error || {});
    if (response.status === 402) { error.type = "card_error"; }  // localstripe says invalid_request_error
    return {error: error};
  }

  function cardParams(params, method) {
    const value = method.card.value;
    if (!value || !value.card || !value.card.number) {
      return {type: "validation_error", code: "incomplete_number", message: "Your card number is incomplete."};
    }
    params.set("payment_method_data[type]", "card");
    params.set("payment_method_data[card][number]", value.card.number.replace(/\s+/g, ""));
    params.set("payment_method_data[card][exp_month]", value.card.exp_month);
    params.set("payment_method_data[card][exp_year]", value.card.exp_year);
    params.set("payment_method_data[card][cvc]", value.card.cvc);
    const details = method.billing_details || {};
    ["name", "email", "phone"].forEach(function (name) {
      if (details[name]) { params.set("payment_method_data[billing_details][" + name + "]", details[name]); }
    });
    if (value.postal_code) {
      params.set("payment_method_data[billing_details][address][postal_code]", value.postal_code);
    }
    return null;
  }

  Stripe = function (apiKey, options) {
    if (typeof apiKey !== "string" || !apiKey.startsWith("pk_")) {
      throw new Error("Invalid value for Stripe(): apiKey should be a publishable key (pk_...).");
    }
    const stripe = makeLocalStripe(apiKey);
    const elements = stripe.elements;
    stripe.elements = function (elementsOptions) {
      const group = elements(elementsOptions);
      const create = group.create;
      group.create = function (type, createOptions) { return labelled(create.call(group, type, createOptions)); };
      return group;
    };
    stripe.confirmCardPayment = async function (clientSecret, data) {
      const match = /^(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/.exec(clientSecret || "");
      if (!match) {
        return {error: {type: "invalid_request_error",
                        message: "Invalid value for confirmCardPayment intent secret: value should be a " +
                                 "client_secret string."}};
      }
      const intentId = match[1];
      const params = new URLSearchParams({key: apiKey, client_secret: clientSecret, use_stripe_sdk: "true",
                                          expected_payment_method_type: "card"});
      const method = data && data.payment_method;
      if (typeof method === "string") {
        params.set("payment_method", method);
      } else if (method && method.card instanceof Element) {
        const invalid = cardParams(params, method);
        if (invalid) { return {error: invalid}; }
      }
      try {
        let found = await answer(await fetch(`${LOCALSTRIPE_BASE_API}/v1/payment_intents/${intentId}/confirm`,
                                             {method: "POST", body: params}));
        if (found.error) { return {error: found.error}; }
        if (found.intent.status === "requires_action") {
          const passed = await openModal("3D Secure\nDo you want to confirm or cancel?",
                                         "Complete authentication", "Fail authentication");
          found = await answer(await fetch(
            `${LOCALSTRIPE_BASE_API}/v1/payment_intents/${intentId}/_authenticate?success=${passed}`,
            {method: "POST", body: JSON.stringify({key: apiKey, client_secret: clientSecret})}));
          if (found.error) { return {error: found.error}; }
          if (found.intent.status === "requires_payment_method") {
            const last = found.intent.last_payment_error || {};
            return {error: {type: "card_error", code: last.code || "payment_intent_authentication_failure",
                            message: last.message || "Authentication failed.", payment_intent: found.intent}};
          }
        }
        return {paymentIntent: found.intent};
      } catch (err) {
        return {error: {type: "api_connection_error", message: String(err)}};
      }
    };
    return stripe;
  };
})();
